"""The golden tokenizer corpus (tests/data/tokenizer_corpus.jsonl, >= 300 prompts) that the C++
tokenizer is held to: it is what lredit's Python tokenizer gives, and that is what transformers'
CLIPTokenizer gives."""

import json
from pathlib import Path

import pytest

from lredit.tokenizer import ClipTokenizer

CORPUS = Path(__file__).resolve().parents[1] / "data" / "tokenizer_corpus.jsonl"


@pytest.fixture(scope="module")
def records():
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def test_corpus_covers_the_hard_cases(records):
    texts = [r["text"] for r in records]
    assert len(texts) >= 300 and len(set(texts)) == len(texts)
    for needle in ("2024", "3.14", "\t", "\n", "🍓", "日本", "é", "'s", "!!!", "<|endoftext|>", "\u0301", "\u00a0"):
        assert any(needle in t for t in texts), needle
    assert sum(r["truncated"] for r in records) >= 10
    assert all(len(r["ids"]) == 77 and r["ids"][0] == 49406 for r in records)


def test_corpus_is_the_python_tokenizer(records):
    ours = ClipTokenizer.default()
    for r in records:
        got = ours.encode(r["text"])
        assert (got.ids.tolist(), got.token_count, got.truncated) == (r["ids"], r["token_count"], r["truncated"]), repr(r["text"])


def test_corpus_is_transformers_clip_tokenizer(records):
    transformers = pytest.importorskip("transformers")
    vocab, merges = ClipTokenizer.default().files
    theirs = transformers.CLIPTokenizer(str(vocab), str(merges), model_max_length=77)  # positional in transformers 5
    for r in records:
        assert theirs(r["text"], padding="max_length", max_length=77, truncation=True).input_ids == r["ids"], repr(r["text"])
