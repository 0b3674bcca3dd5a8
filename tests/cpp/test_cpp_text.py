"""The C++ text and number foundations (cpp/src: philox, sha256, tokenizer) built with g++
and held to their Python counterparts: noise bit for bit, file digests to hashlib, token ids to
the Python tokenizer on the golden corpus and on random text.

Each cpp/tests/test_*.cpp is a program that exits nonzero on failure and takes the
repository root as its argument (or $LREDIT_REPO_ROOT); the CMake project runs the same programs
under ctest. Skips with the reason where g++ or nlohmann-json (Debian nlohmann-json3-dev) is absent.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from lredit.engine.ops.noise import initial_noise
from lredit.tokenizer import ClipTokenizer

ROOT = Path(__file__).resolve().parents[2]
CPP = ROOT / "cpp"
FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1"]
PROGRAMS = {
    "philox": ["tests/test_philox.cpp", "src/philox.cpp"],
    "sha256": ["tests/test_sha256.cpp", "src/sha256.cpp"],
    "tokenizer": ["tests/test_tokenizer.cpp", "src/tokenizer.cpp", "src/unicode.cpp"],
}


def _has_nlohmann(gxx: str) -> bool:
    probe = subprocess.run([gxx, "-std=c++17", "-E", "-x", "c++", "-"], input="#include <nlohmann/json.hpp>\n",
                           capture_output=True, text=True, check=False)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, Path]:
    """The test programs, compiled in parallel; a missing one is absent from the dict."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found: the C++ tests need a C++17 compiler")
    out = tmp_path_factory.mktemp("cpp_text")
    wanted = dict(PROGRAMS)
    if not _has_nlohmann(gxx):
        wanted.pop("tokenizer")
    jobs = {
        name: subprocess.Popen([gxx, *FLAGS, "-o", str(out / name), *(str(CPP / f) for f in files)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, files in wanted.items()
    }
    for name, job in jobs.items():
        log, _ = job.communicate()
        assert job.returncode == 0, f"g++ failed for {name}:\n{log}"
    return {name: out / name for name in jobs}


def _program(programs: dict[str, Path], name: str) -> Path:
    if name not in programs:
        pytest.skip("nlohmann/json.hpp not found (Debian: apt-get install nlohmann-json3-dev)")
    return programs[name]


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_cpp_program_passes(programs, name):
    run = subprocess.run([str(_program(programs, name)), str(ROOT)], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout


@pytest.mark.parametrize("seed, anchor, size", [(0, 0, 0), (7, 8, 5), (2**63 + 17, 2**32 - 1, 3)])
def test_cpp_noise_bit_exact(programs, tmp_path, seed, anchor, size):
    count = 1 << 20
    out = tmp_path / "noise.bin"
    subprocess.run([str(programs["philox"]), "--dump", str(seed), str(anchor), str(size), str(count), str(out)], check=True)
    ours = np.fromfile(out, dtype="<f4")
    numpy_side = initial_noise(seed, anchor, size, (count,))
    assert np.array_equal(ours.view(np.uint32), numpy_side.view(np.uint32))


def test_cpp_sha256_matches_hashlib(programs, tmp_path):
    rng = np.random.default_rng(5)
    files = []
    for size in (0, 1, 55, 56, 63, 64, 65, 1000, (1 << 20) + 7, 3 << 20):
        path = tmp_path / f"f{size}.bin"
        path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        files.append(path)
    run = subprocess.run([str(programs["sha256"]), "--files", *map(str, files)], capture_output=True, text=True, check=True)
    got = dict(line.split("  ", 1)[::-1] for line in run.stdout.splitlines())
    assert got == {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _random_texts(n: int, seed: int) -> list[str]:
    """Strings over the characters where tokenizers go wrong: marks, spaces, case, digits, scripts."""
    rng = random.Random(seed)
    pool = list("aAeEiIsStT09 .,!?'\"-_/\\()<>|") + [
        "\t", "\n", "\r", "\x0b", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000", "\u200b", "\u00ad",
        "\u0301", "\u0300", "\u0308", "\u0316", "\u0323", "\u0327", "\u0334", "\u0338", "\u0345", "\u05b0", "\u093c",
        "\u1abf", "\u0898", "\u1100", "\u1161", "\u11a8", "\uac00", "\u212b", "\u2126", "\u0130", "\u03a3", "\u1e9e",
        "\u00df", "\ufb01", "\uff21", "\u2167", "\u0663", "\u00bd", "\u00b2", "\u2019", "\u2014", "\u2026",
        "\u65e5", "\u672c", "\uc5b4", "\u0416", "\u05d0", "\u0627", "\U0001f353", "\U0001f3fd", "\u200d", "\ufe0f",
        "\U000105c0", "\U00010d40", "\u1c89", "\U00011935", "\U00011930", "<|endoftext|>", "<|startoftext|>",
        "<|STARTOFTEXT|>", "'s", "'ll", "n't",
    ]
    composing = [chr(c) for c in range(0x30000) if unicodedata.combining(chr(c)) or unicodedata.decomposition(chr(c))]
    texts = []
    for i in range(n):
        if i % 4 == 3:  # any code point outside the surrogates
            chars = [chr(rng.choice([rng.randrange(0x80, 0xD800), rng.randrange(0xE000, 0x110000)])) for _ in range(rng.randint(1, 12))]
        elif i % 4 == 2:  # NFC: marks, decomposable characters and their parts, Hangul jamo
            chars = [rng.choice(composing + ["a", "e", " ", "\u1100", "\u1161", "\u11a8"]) for _ in range(rng.randint(1, 10))]
        else:
            chars = [rng.choice(pool) for _ in range(rng.randint(0, 30))]
        texts.append("".join(chars))
    return texts


def test_cpp_tokenizer_matches_python_on_random_text(programs, tmp_path):
    """Through a tokenizer folder as a bundle holds it (ClipTokenizer.save), pad token '!'."""
    program = _program(programs, "tokenizer")
    python = ClipTokenizer.default(pad_token="!")
    folder = tmp_path / "tokenizer"
    python.save(folder)
    texts = _random_texts(3000, seed=15)
    stdin = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    run = subprocess.run([str(program), "--encode", str(folder)], input=stdin, capture_output=True, text=True, check=True)
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(answers) == len(texts)
    for text, got in zip(texts, answers, strict=True):
        want = python.encode(text)
        assert got == {"ids": want.ids.tolist(), "token_count": want.token_count, "truncated": want.truncated}, repr(text)


def test_unicode_tables_are_current():
    """cpp/src/unicode_data.inc is what the generator makes from this Python and tokenizers."""
    header = (CPP / "src" / "unicode_data.inc").read_text().splitlines()[0]
    if not header.endswith(f"unicodedata {unicodedata.unidata_version}"):
        pytest.skip(f"tables generated from another unicodedata than {unicodedata.unidata_version}: {header}")
    tool = CPP / "tools" / "gen_unicode_tables.py"
    run = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr


def test_cpp_tokenizer_pad_token_from_tokenizer_config(programs, tmp_path):
    """A Hugging Face folder without special_tokens_map.json: the pad token from tokenizer_config.json,
    written as an AddedToken dict (Stable Diffusion 2's "!")."""
    program = _program(programs, "tokenizer")
    vocab, merges = ClipTokenizer.default().files
    folder = tmp_path / "sd2"
    folder.mkdir()
    shutil.copyfile(vocab, folder / "vocab.json")
    shutil.copyfile(merges, folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"pad_token": {"content": "!", "lstrip": False}}))
    want = ClipTokenizer.from_folder(folder).encode("a red apple")
    assert want.ids[-1] == 0
    run = subprocess.run([str(program), "--encode", str(folder)], input='{"text": "a red apple"}\n', capture_output=True,
                         text=True, check=True)
    assert json.loads(run.stdout)["ids"] == want.ids.tolist()
