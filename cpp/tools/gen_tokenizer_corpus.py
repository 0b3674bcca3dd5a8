"""Write tests/data/tokenizer_corpus.jsonl: prompts and the ids lredit's Python tokenizer gives them
(the CLIP vocabulary in src/lredit/data, max_length 77). test_tokenizer.cpp holds the C++ tokenizer to it;
tests/test_tokenizer_corpus.py holds the Python tokenizer to it and to transformers' CLIPTokenizer.

Run from the repository root: ``python cpp/tools/gen_tokenizer_corpus.py`` (``--check``
compares with the committed file instead of writing).

One JSON object per line: {"text": str, "ids": [77 ints], "token_count": int, "truncated": bool}.
The prompts: hand-written cases for each rule of the tokenizer, then prompts composed from a pool
of fragments by a seeded generator (Python's `random`, seed 2024), so the file is reproducible.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from generated_file import write_or_check

from lredit.tokenizer import ClipTokenizer

OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "tokenizer_corpus.jsonl"
COMPOSED = 200
SEED = 2024

HAND = [
    # plain prompts
    "a bowl of strawberries", "A photo of a cat", "a high quality image of a dog.", "final prompt",
    "a sunset over mountains, oil painting, trending on artstation", "portrait of an old man, 85mm, f/1.8",
    "two cats and a dog", "the quick brown fox jumps over the lazy dog", "An Astronaut Riding A Horse",
    # empty and whitespace
    "", " ", "\t", "\n", "   \t\n  ", "two  spaces", "tab\tseparated\twords", "new\nline", "crlf\r\nline",
    "trailing space ", " leading space", "a\u00a0non-breaking space", "ideographic\u3000space", "em\u2003space",
    "line\u2028separator", "next\u0085line", "unit\x1fseparator", "file\x1cseparator", "vertical\x0btab\x0cfeed",
    "zero\u200bwidth", "word\u200djoiner", "soft\u00adhyphen", "bom\ufeffinside",
    # case
    "UPPER lower MiXeD", "ALL CAPS PROMPT", "İstanbul", "ΣΊΣΥΦΟΣ", "ΟΔΥΣΣΕΥΣ", "Straße STRASSE", "ǅemal ǈubljana",
    "Ⅻ roman numeral", "ＦＵＬＬＷＩＤＴＨ ｆｕｌｌ", "ﬁre ﬂy ﬀ", "ẞ capital sharp s",
    # contractions and apostrophes
    "don't stop; it's fine, we're here", "I'll I'd you've I'm", "DON'T IT'S WE'RE", "o'clock rock'n'roll",
    "'s 't 're 've 'm 'll 'd", "''s", "'''", "it’s curly", "rock ’n’ roll", "'tis the season", "cats' toys",
    "the dog's bone's", "y'all'd've", "'", "''", "'S 'T",
    # digits and numbers
    "2024", "3.14", "3.14159265358979", "numbers 1234 and 3.14159", "1,000,000 dollars", "-42", "+7", "1e-5",
    "½ cup of sugar", "x² + y³", "١٢٣ arabic-indic", "०१२ devanagari", "①②③", "ⅷ", "12:30pm", "2024-11-25",
    "v1.2.3", "#1 @home", "100% sure", "0x1F600",
    # punctuation runs
    "repeated!!!???...", "---dashes---", "...", "!!!", "?!?!", "(parentheses) [brackets] {braces}",
    "<angle> <<brackets>>", "e-mail: x@y.z", "path/to/file.png", "https://example.com/a?b=c&d=e",
    "snake_case and camelCase", "hyphen-ated compound-word", "red, green, blue; cyan: magenta!", "a/b\\c|d",
    "~`@#$%^&*()_+-=", "«quotes» “curly” ‘single’", "math ∑ ∫ √ π ≈ ≠", "arrows → ← ↑ ↓", "•bullet •list",
    "¡hola! ¿qué tal?", "a.b.c.d", "end.", "ellipsis…", "—em dash—", "«»", "\x00null", "bell\x07",
    # accents and normalisation
    "café naïve résumé", "Ünïcödé ßtraße", "accents: àáâãäå", "Ça va très bien", "combining e\u0301",
    "cafe\u0301 decomposed", "a\u0301\u0327 reorder", "a\u0327\u0301 ordered", "q\u0307\u0323", "\u1e0b\u0323",
    "A\u030a ring", "\u212b angstrom", "\u2126 ohm", "K\u212a kelvin", "\u0344 dialytika", "\u0958 qa",
    "Hangul \u1100\u1161\u11a8 jamo", "\u1100\u1161", "\uac00\u11a8", "한국어 문장", "\u0928\u093c nukta",
    "\u1e9b\u0323", "\U00011935\U00011930 dives akuru", "a\u1abf\u0301 new mark", "a\u0898\u0316",
    "e\u0301\u0301\u0301", "\u0301 leading mark", ">\u0338", "<|endoftext|>\u0338",
    # scripts
    "日本語のテキスト", "mixed 中文 and english", "中文，标点。", "Ελληνικά γράμματα", "русский текст",
    "עברית", "العربية", "हिन्दी", "ภาษาไทย", "Tiếng Việt có dấu", "ქართული", "Հայերեն", "தமிழ்",
    "日本語とEnglishの混在テキスト2024年", "カタカナ ｶﾀｶﾅ", "𠀀 cjk extension b", "\U000105c0 todhri",
    "\U00010d40 garay digit", "\u1c89 new case",
    # emoji
    "emoji 🍓🍌🎉", "🍓", "👍🏽 thumbs", "👨‍👩‍👧‍👦 family", "🇫🇷 flag", "❤️ heart", "☕ coffee", "🐱‍👤",
    "a🍓b", "🎉🎉🎉", "1️⃣ keycap",
    # special tokens in the text
    "<|startoftext|> inside", "<|endoftext|> inside", "a<|endoftext|>b", "<|STARTOFTEXT|> upper",
    "<|EndOfText|>", "<|startoftext|><|endoftext|>", "<|startoftext", "|endoftext|>", "<|unknown|>",
    # long
    "a" * 300, "word " * 100, "a cat on a mat " * 20, "x" * 80 + " y", "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "🍓" * 50, "1" * 100, "!" * 200, "日本" * 60,
    " ".join(str(i) for i in range(100)), "a, " * 80, "ab" * 150,
]

FRAGMENTS = [
    "a", "photo", "of", "the", "cat", "dog", "on", "table", "red", "Blue", "GREEN", "bowl", "strawberries", "café",
    "naïve", "don't", "it's", "2024", "3.14", "42", "!", "?", "...", ",", ";", ":", "-", "—", "(", ")", "'s", "\"",
    "日本", "中文", "한국", "Ελλάδα", "Москва", "🍓", "🎉", "👍🏽", "\t", "\n", "  ", "\u00a0", "<|endoftext|>",
    "e\u0301", "İ", "ß", "ﬁ", "½", "x²", "#", "@", "http://x.y/z", "snake_case", "O'Brien", "rock'n'roll",
    "high-quality", "8k", "4K", "HDR", "f/2.8", "100%", "&", "zero\u200bwidth", "ΣΑΣ",
]


def composed_prompts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    prompts = []
    for _ in range(n):
        words = [rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 40))]
        joiners = [rng.choice([" ", " ", " ", "", ", ", "  "]) for _ in words]
        prompts.append("".join(w + j for w, j in zip(words, joiners)).rstrip(" ") if rng.random() < 0.8 else "".join(words))
    return prompts


def corpus() -> list[str]:
    prompts = HAND + composed_prompts(COMPOSED, SEED)
    seen = set()
    return [p for p in prompts if not (p in seen or seen.add(p))]


def render(tokenizer: ClipTokenizer) -> str:
    lines = []
    for text in corpus():
        got = tokenizer.encode(text)
        record = {"text": text, "ids": got.ids.tolist(), "token_count": got.token_count, "truncated": got.truncated}
        lines.append(json.dumps(record, ensure_ascii=True))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return write_or_check(OUT, lambda: render(ClipTokenizer.default()), __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
