"""Graph I/O recording (lr-edit --dump-graph-io, Editor.edit(dump_graph_io=...)) and its Python
replay: the recording holds every graph call in order with loadable tensors, the token ids and the
initial noise the edit used; replaying it reproduces the edit without running a graph."""

from __future__ import annotations

import json

import numpy as np

from lredit.config import EditConfig
from lredit.engine.frontends.editor import Editor
from lredit.engine.frontends.graph_io import record_edit, replay_sessions
from lredit.engine.ops.noise import initial_noise
from lredit.engine.runtimes.bundle_loader import BundlePipeline, bundle_assets, bundle_config
from lredit.kernels import roi_pool_ref
from lredit.manifest import read_manifest


def test_recording_lists_every_call_and_replays_to_the_same_edit(tiny_bundle, photo, tmp_path):
    editor = Editor.from_bundle(tiny_bundle)
    result = editor.edit(photo, "a red apple", steps=3, anchors=3, seed=7, regions="rgn", dump_graph_io=tmp_path / "dump")
    index = json.loads((tmp_path / "dump" / "index.json").read_text())
    graphs = [call["graph"] for call in index["calls"]]
    assert graphs[:4] == ["dino", "rgn", "sd_text", "vae_encoder"] and graphs[-3:] == ["vae_decoder", "clip_vision", "clip_text"]
    assert graphs.count("unet") == 4  # PNDM's PLMS schedule: steps + 1 UNet calls
    unet = index["calls"][4]
    sample = np.load(tmp_path / "dump" / unet["inputs"]["sample"])
    assert sample.dtype == np.float32 and sample.shape == (6, 9, 8, 8)
    assert np.load(tmp_path / "dump" / index["calls"][2]["inputs"]["input_ids"]).dtype == np.int64
    assert [t["text"] for t in index["tokens"]["sd"]] == ["a high quality image of a red apple.", ""]
    assert index["result"]["chosen"] == result.chosen and index["result"]["size_index"] == result.size_index.tolist()
    for entry in index["noise"]:
        want = initial_noise(7, entry["anchor"], entry["size"], (4, 8, 8))
        assert np.array_equal(np.load(tmp_path / "dump" / entry["file"]), want)

    manifest = read_manifest(tiny_bundle)
    replayed = BundlePipeline(replay_sessions(tmp_path / "dump"), bundle_assets(manifest, roi_pool_ref.roi_pool_anchors),
                              bundle_config(manifest, EditConfig()), manifest).edit(photo, "a red apple", steps=3, anchors=3, seed=7,
                                                                                          regions="rgn")
    assert replayed.chosen == result.chosen
    for a, b in zip(replayed.candidates, result.candidates):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_record_edit_on_the_pipeline_writes_the_image_it_edited(tiny_bundle, photo, tmp_path):
    pipeline = Editor.from_bundle(tiny_bundle).pipeline
    record_edit(pipeline, photo, "a bowl", tmp_path, steps=2, anchors=2, regions="rgn")
    index = json.loads((tmp_path / "index.json").read_text())
    assert np.array_equal(np.load(tmp_path / index["image"]), np.asarray(photo.convert("RGB")))
    assert index["config"]["anchors"] == 2 and index["graph_seconds"] <= index["edit_seconds"]
