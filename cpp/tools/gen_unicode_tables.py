"""Generate cpp/src/unicode_data.inc: the character data the C++ CLIP tokenizer needs to
treat every code point as lredit's Python tokenizer (src/lredit/tokenizer.py) does.

Run from the repository root: ``python cpp/tools/gen_unicode_tables.py`` (``--check``
compares with the committed file instead of writing; tests/test_cpp_text.py does that).

Sources. Python's ``unicodedata`` for every code point it knows: general categories L* and N*,
canonical decompositions, canonical combining classes, primary composites, and ``str.lower``.
The Python tokenizer runs on the `tokenizers` library, whose parts carry other Unicode versions
than this Python's ``unicodedata``: its regex engine and lowercasing are newer (they know letters,
digits and case pairs that ``unicodedata`` lists as unassigned), its NFC older (it does not know
some combining marks and one decomposition). For those code points, and only those, the tables
take what the library does, found by running its normalizers over every code point; the script
asserts that the two sources agree on everything else. Whitespace is the regex engine's ``\\s``
(the Unicode White_Space set, which ``unicodedata`` does not expose), likewise read from the
library and checked against ``str.isspace``.
"""

from __future__ import annotations

import unicodedata as ud
from pathlib import Path

from generated_file import write_or_check
from tokenizers import Regex, normalizers

OUT = Path(__file__).resolve().parents[1] / "src" / "unicode_data.inc"
CODE_POINTS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
HANGUL = range(0xAC00, 0xD7A4)
# Marks after which a mark of another class moves under canonical reordering, or composes.
PROBE_MARKS = ("\u0334", "\u0301", "\u0316", "\u05b0", "\u0345", "\u0300")


def _assigned(c: int) -> bool:
    return ud.category(chr(c)) != "Cn"


def _library_set(pattern_of_others: str) -> set[int]:
    """Code points the library's regex class keeps: Replace(others, "") over all code points."""
    text = "".join(map(chr, CODE_POINTS))
    return {ord(ch) for ch in normalizers.Replace(Regex(pattern_of_others), "").normalize_str(text)}


def category_set(prefix: str, pattern_of_others: str) -> list[int]:
    ours = {c for c in CODE_POINTS if ud.category(chr(c)).startswith(prefix)}
    library = _library_set(pattern_of_others)
    disagree = ours ^ library
    assert all(not _assigned(c) for c in disagree), f"\\p{{{prefix}}} differs on assigned code points"
    return sorted(ours | library)


def whitespace() -> list[int]:
    library = _library_set(r"\S")
    python = {c for c in CODE_POINTS if chr(c).isspace()}
    assert python - library == set(range(0x1C, 0x20)), "\\s differs from str.isspace beyond U+001C..U+001F"
    return sorted(library)


def lowercase() -> dict[int, tuple[int, ...]]:
    points = CODE_POINTS[1:]  # U+0000 is the separator below
    lowered = normalizers.Lowercase().normalize_str("\0".join(map(chr, points))).split("\0")
    table = {}
    for c, library in zip(points, lowered, strict=True):
        python = chr(c).lower()
        assert library == python or not _assigned(c), f"lowercase of U+{c:04X} differs"
        if library != chr(c):
            table[c] = tuple(map(ord, library))
    return table


def combining_classes() -> dict[int, int]:
    """ccc of each mark, 0 where the library's NFC treats the mark as a starter (unknown to it)."""
    nfc = normalizers.NFC()
    table = {}
    for c in CODE_POINTS:
        ccc = ud.combining(chr(c))
        if not ccc:
            continue
        probes = ["a" + chr(c) + m for m in PROBE_MARKS]
        if all(nfc.normalize_str(s) == ud.normalize("NFC", s) for s in probes):
            table[c] = ccc
    return table


def decompositions() -> dict[int, tuple[int, ...]]:
    """Full canonical decomposition of every code point that has one (Hangul is algorithmic),
    except those the library's normalizer does not know (it leaves them whole)."""
    nfd = normalizers.NFD()
    table = {}
    for c in CODE_POINTS:
        mapping = ud.decomposition(chr(c))
        if c in HANGUL or not mapping or mapping.startswith("<"):
            continue
        full = ud.normalize("NFD", chr(c))
        library = nfd.normalize_str(chr(c))
        assert library in (full, chr(c)), f"the decomposition of U+{c:04X} differs"
        if library == full:
            table[c] = tuple(map(ord, full))
    return table


def compositions() -> dict[tuple[int, int], int]:
    """Primary composites (first, second) -> composite that both NFCs compose."""
    nfc = normalizers.NFC()
    table = {}
    for c in CODE_POINTS:
        mapping = ud.decomposition(chr(c))
        if c in HANGUL or not mapping or mapping.startswith("<") or len(mapping.split()) != 2:
            continue
        pair = tuple(int(h, 16) for h in mapping.split())
        text = chr(pair[0]) + chr(pair[1])
        if ud.normalize("NFC", text) == chr(c) and nfc.normalize_str(text) == chr(c):
            table[pair] = c
    return table


def _ranges(points: list[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for c in points:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return [(a, b) for a, b in out]


def _rows(items: list[str], per_line: int) -> str:
    return "\n".join("    " + " ".join(items[i : i + per_line]) for i in range(0, len(items), per_line))


def render() -> str:
    letters = category_set("L", r"[^\p{L}]")
    numbers = category_set("N", r"[^\p{N}]")
    spaces = whitespace()
    lower = lowercase()
    ccc = combining_classes()
    decomp = decompositions()
    comp = compositions()
    single_lower = {c: m[0] for c, m in lower.items() if len(m) == 1}
    multi_lower = {c: m for c, m in lower.items() if len(m) > 1}
    assert all(len(m) <= 3 for m in multi_lower.values())
    ccc_ranges: list[list[int]] = []
    for c in sorted(ccc):
        if ccc_ranges and ccc_ranges[-1][1] == c - 1 and ccc_ranges[-1][2] == ccc[c]:
            ccc_ranges[-1][1] = c
        else:
            ccc_ranges.append([c, c, ccc[c]])
    decomp_data: list[int] = []
    decomp_index = []
    for c in sorted(decomp):
        decomp_index.append((c, len(decomp_data), len(decomp[c])))
        decomp_data.extend(decomp[c])

    def ranges_table(name: str, points: list[int]) -> str:
        items = [f"{{0x{a:X}, 0x{b:X}}}," for a, b in _ranges(points)]
        return f"constexpr CodeRange {name}[] = {{\n{_rows(items, 6)}\n}};\n"

    parts = [
        f"// Generated by cpp/tools/gen_unicode_tables.py from unicodedata {ud.unidata_version}",
        "// and the tokenizers library's normalizers (see the script). Do not edit.",
        "",
        ranges_table("kLetters", letters),
        ranges_table("kNumbers", numbers),
        ranges_table("kSpaces", spaces),
        "constexpr CaseMapping kLower[] = {\n"
        + _rows([f"{{0x{c:X}, 0x{m:X}}}," for c, m in sorted(single_lower.items())], 6)
        + "\n};\n",
        "constexpr MultiCaseMapping kLowerMulti[] = {\n"
        + _rows([f"{{0x{c:X}, {{{', '.join(f'0x{x:X}' for x in m)}}}, {len(m)}}}," for c, m in sorted(multi_lower.items())], 2)
        + "\n};\n",
        "constexpr ClassRange kCombiningClasses[] = {\n"
        + _rows([f"{{0x{a:X}, 0x{b:X}, {k}}}," for a, b, k in ccc_ranges], 5)
        + "\n};\n",
        "constexpr char32_t kDecompositionData[] = {\n" + _rows([f"0x{x:X}," for x in decomp_data], 10) + "\n};\n",
        "constexpr Decomposition kDecompositions[] = {\n"
        + _rows([f"{{0x{c:X}, {o}, {n}}}," for c, o, n in decomp_index], 5)
        + "\n};\n",
        "constexpr Composition kCompositions[] = {\n"
        + _rows([f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}," for (a, b), c in sorted(comp.items())], 4)
        + "\n};\n",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    return write_or_check(OUT, render, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
