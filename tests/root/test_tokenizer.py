"""The torch-free tokenizer against transformers' CLIPTokenizer on 50 prompts."""

import numpy as np
import pytest

from lredit.tokenizer import ClipTokenizer

PROMPTS = [
    "a bowl of strawberries", "A photo of a cat", "", " ", "UPPER lower MiXeD", "two  spaces\tand\nnewline",
    "don't stop; it's fine, we're here", "I'll I'd you've", "numbers 1234 and 3.14159", "e-mail: x@y.z",
    "café naïve résumé", "Ünïcödé ßtraße", "日本語のテキスト", "emoji 🍓🍌🎉", "mixed 中文 and english",
    "¡hola! ¿qué tal?", "«quotes» “curly” ‘single’", "math ∑ ∫ √ π ≈ ≠", "tabs\t\t\tmany", "---dashes---",
    "a" * 300, "word " * 100, "red, green, blue; cyan: magenta!", "(parentheses) [brackets] {braces}",
    "path/to/file.png", "snake_case and camelCase", "hyphen-ated compound-word", "100% sure #1 @home",
    "a high quality image of a dog.", "a sunset over mountains, oil painting, trending",
    "Ça va très bien", "Ελληνικά γράμματα", "русский текст", "עברית", "العربية", "हिन्दी",
    "accents: àáâãäå", "ligature ﬁ ﬂ", "fullwidth ＡＢＣ", "zero\u200bwidth", "combining e\u0301",
    "<|startoftext|> inside", "<|endoftext|> inside", "trailing space ", " leading space",
    "repeated!!!???...", "o'clock rock'n'roll", "x" * 80 + " y", "a cat on a mat " * 20, "final prompt",
]


@pytest.fixture(scope="module")
def pair():
    from transformers import CLIPTokenizer

    ours = ClipTokenizer.default()
    vocab, merges = ours.files
    theirs = CLIPTokenizer(str(vocab), str(merges), model_max_length=77)  # positional in transformers 5
    return ours, theirs


def test_fifty_prompts_match_transformers(pair):
    ours, theirs = pair
    assert len(PROMPTS) == 50
    for text in PROMPTS:
        ref = theirs(text, padding="max_length", max_length=77, truncation=True).input_ids
        got = ours.encode(text)
        assert got.ids.tolist() == ref, text
        assert got.ids.dtype == np.int64


def test_known_ids_and_truncation(pair):
    ours, _ = pair
    got = ours.encode("a photo of a cat")
    assert got.ids[:7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert not got.truncated and got.token_count == 5
    long = ours.encode("word " * 100)
    assert long.truncated and long.token_count == 100 and long.ids[-1] == 49407
