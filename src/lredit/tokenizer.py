"""CLIP byte-level BPE tokenizer on the `tokenizers` library (no torch, no transformers).

Same normalisation, pre-tokenisation and BPE as transformers' CLIPTokenizer; ids are padded
to `max_length` with the model's pad token and truncated to keep <|startoftext|> ... <|endoftext|>.
The default vocabulary (src/lredit/data/clip_vocab.json, clip_merges.txt) is OpenAI CLIP's BPE as
shipped in open_clip (MIT license; see src/lredit/data/LICENSE-clip-vocab.txt).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import BPE

from .errors import BundleError

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@dataclass(frozen=True)
class TokenizedText:
    ids: np.ndarray
    """int64 [max_length]: BOS, tokens, EOS, padding."""
    token_count: int
    """Tokens of the text itself before truncation (BOS/EOS excluded)."""
    truncated: bool


class ClipTokenizer:
    def __init__(self, vocab_path: Path, merges_path: Path, *, max_length: int = 77, pad_token: str = EOS):
        try:
            vocab = json.loads(Path(vocab_path).read_text(encoding="utf-8"))
            lines = Path(merges_path).read_text(encoding="utf-8").splitlines()
        except (OSError, ValueError) as exc:
            raise BundleError(f"cannot read CLIP tokenizer files {vocab_path}, {merges_path}: {exc}") from None
        merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
        model = BPE(
            vocab=vocab,
            merges=merges,
            continuing_subword_prefix="",
            end_of_word_suffix="</w>",
            fuse_unk=False,
            unk_token=EOS,
        )
        tok = Tokenizer(model)
        tok.normalizer = normalizers.Sequence(
            [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
        )
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(_SPLIT), behavior="removed", invert=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False),
            ]
        )
        tok.add_special_tokens([BOS, EOS])  # as transformers: the markers in text are special
        self._tok = tok
        self.max_length = max_length
        missing = [t for t in (BOS, EOS, pad_token) if t not in vocab]
        if missing:
            raise BundleError(f"CLIP vocabulary {vocab_path} lacks the special tokens {missing}")
        self.bos_id, self.eos_id, self.pad_id = vocab[BOS], vocab[EOS], vocab[pad_token]
        self.files = (Path(vocab_path), Path(merges_path))
        self.pad_token = pad_token

    @classmethod
    def default(cls, **kwargs) -> "ClipTokenizer":
        data = resources.files("lredit") / "data"
        with resources.as_file(data / "clip_vocab.json") as vocab, resources.as_file(data / "clip_merges.txt") as merges:
            return cls(vocab, merges, **kwargs)

    @classmethod
    def from_folder(cls, folder: Path, **kwargs) -> "ClipTokenizer":
        """A Hugging Face tokenizer folder (vocab.json, merges.txt, optional special_tokens_map.json)."""
        folder = Path(folder)
        pad = kwargs.pop("pad_token", None) or _pad_token_of(folder)
        return cls(folder / "vocab.json", folder / "merges.txt", pad_token=pad, **kwargs)

    def save(self, folder: Path) -> list[Path]:
        """Write a Hugging Face tokenizer folder that `from_folder` reads back; returns the files."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.files[0], folder / "vocab.json")
        shutil.copyfile(self.files[1], folder / "merges.txt")
        (folder / "special_tokens_map.json").write_text(json.dumps({"pad_token": self.pad_token}))
        return [folder / name for name in ("vocab.json", "merges.txt", "special_tokens_map.json")]

    def encode(self, text: str) -> TokenizedText:
        tokens = self._tok.encode(text, add_special_tokens=False).ids
        room = self.max_length - 2
        body = tokens[:room]
        ids = [self.bos_id, *body, self.eos_id]
        ids += [self.pad_id] * (self.max_length - len(ids))
        return TokenizedText(np.asarray(ids, dtype=np.int64), len(tokens), len(tokens) > room)


def _pad_token_of(folder: Path) -> str:
    """The pad token named by the folder's special_tokens_map.json or tokenizer_config.json."""
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            pad = json.loads(path.read_text(encoding="utf-8")).get("pad_token")
            if isinstance(pad, dict):
                pad = pad.get("content")
            if isinstance(pad, str):
                return pad
    return EOS
