"""Issue #24, bundles: each kind of damaged bundle is refused when it opens, with one
BundleError naming the problem (lr-edit: exit 2, one line), never a KeyError, an IndexError or
ONNX Runtime's InvalidArgument mid-edit."""

import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from lredit.bundle import sha256_file
from lredit.engine.frontends.cli import main
from lredit.engine.frontends.editor import Editor
from lredit.errors import BundleError

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "table.png"


def _copy(tiny_bundle, tmp_path) -> tuple[Path, dict]:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    return bundle, json.loads((bundle / "manifest.json").read_text())


def _write(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _swap_graph(bundle: Path, manifest: dict, graph: str, donor: str) -> None:
    """`graph`'s files replaced by `donor`'s, the sha256 entries rewritten to match."""
    entry, other = manifest["graphs"][graph], manifest["graphs"][donor]
    entry.pop("ort_file", None)
    shutil.copyfile(bundle / other["file"], bundle / entry["file"])
    entry["files"] = {entry["file"]: sha256_file(bundle / entry["file"])}
    entry["files"].update({f: d for f, d in other["files"].items() if f.endswith(".data")})


def _deep(bundle, manifest):
    (bundle / "manifest.json").write_text('{"format_version": 1, "graphs": ' + "[" * 100_000 + "]" * 100_000 + "}")


def _swapped_text_encoders(bundle, manifest):  # same input names, other outputs
    _swap_graph(bundle, manifest, "sd_text", "clip_text")


def _swapped_decoder(bundle, manifest):
    _swap_graph(bundle, manifest, "vae_encoder", "vae_decoder")


def _geometry(bundle, manifest):
    manifest["pipeline"]["working_size"] = 128


def _empty_alphas(bundle, manifest):
    manifest["scheduler"]["alphas_cumprod"] = []


def _short_alphas(bundle, manifest):
    manifest["scheduler"]["alphas_cumprod"] = manifest["scheduler"]["alphas_cumprod"][:10]


def _pickled_projection(bundle, manifest):
    buffer = io.BytesIO()
    np.savez(buffer, weight=np.array([object()], dtype=object), bias=np.zeros(3))
    (bundle / "rgn_projection.npz").write_bytes(buffer.getvalue())
    manifest["assets"]["rgn_projection.npz"] = sha256_file(bundle / "rgn_projection.npz")


def _projection_is_a_pickle(bundle, manifest):
    (bundle / "rgn_projection.npz").write_bytes(pickle.dumps({"weight": [1.0]}))
    manifest["assets"]["rgn_projection.npz"] = sha256_file(bundle / "rgn_projection.npz")


KINDS = {
    "deeply nested manifest": (_deep, "nested too deeply to be a manifest"),
    "graph swapped, same inputs": (_swapped_text_encoders,
                                   "graph sd_text: outputs ['text_embeds'] differ from the manifest's ['hidden_states']"),
    "graph swapped": (_swapped_decoder, "graph vae_encoder: inputs ['latents'] differ from the manifest's ['images']"),
    "geometry": (_geometry, "pipeline geometry disagrees with its graphs: unet.sample[2] is 8, working_size=128"),
    "empty alphas": (_empty_alphas, "alphas_cumprod has 0 entries; its config's num_train_timesteps=1000 needs as many"),
    "short alphas": (_short_alphas, "alphas_cumprod has 10 entries"),
    "object array in the projection": (_pickled_projection, "rgn_projection.npz is not a projection npz"),
    "projection is a pickle": (_projection_is_a_pickle, "rgn_projection.npz is not a projection npz"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_damaged_bundle_is_refused_when_it_opens(tiny_bundle, tmp_path, capsys, kind):
    damage, message = KINDS[kind]
    bundle, manifest = _copy(tiny_bundle, tmp_path)
    damage(bundle, manifest)
    if kind != "deeply nested manifest":
        _write(bundle, manifest)
    with pytest.raises(BundleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Editor.from_bundle(bundle, "ort", verify="full")
    out = tmp_path / "out"
    code = main([str(EXAMPLE), "a cat", "--bundle", str(bundle), "--out", str(out), "--no-progress", "--steps", "2"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("lr-edit: error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0] and "Traceback" not in err, err
    assert not out.exists() or not any(out.iterdir())


def test_a_graph_with_a_fixed_batch_is_refused(tiny_bundle, tmp_path):
    """The manifest promises a dynamic batch; a graph that fixes it fails the signature check."""
    from lredit.engine.runtimes.bundle_loader import check_signature
    from lredit.manifest import read_manifest

    entry = read_manifest(tiny_bundle).graphs["vae_decoder"]  # batch and the latent's side are dynamic (crops)
    good = [("latents", "float32", ["batch", 4, "latent", "latent"])]
    image = [("images", "float32", ["batch", 3, "image", "image"])]
    check_signature(entry, good, image)
    with pytest.raises(BundleError, match=r"input latents has shape \[2, 4, 'latent', 'latent'\]"):
        check_signature(entry, [("latents", "float32", [2, 4, "latent", "latent"])], image)
    with pytest.raises(BundleError, match=r"input latents has shape \['batch', 4, 8, 8\]"):
        check_signature(entry, [("latents", "float32", ["batch", 4, 8, 8])], image)
    with pytest.raises(BundleError, match=r"output images has shape \['batch', 3, 32, 32\]"):
        check_signature(entry, good, [("images", "float32", ["batch", 3, 32, 32])])
    with pytest.raises(BundleError, match="input latents is int64, the manifest says float32"):
        check_signature(entry, [("latents", "int64", ["batch", 4, "latent", "latent"])], image)
