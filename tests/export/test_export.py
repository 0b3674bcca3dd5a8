"""lr-export: every graph against its torch module on ONNX Runtime, bundles, idempotency."""

import json
import os

import numpy as np
import pytest
import torch

from lredit import bundle as layout
from lredit.export.exporter import ExportConfig, ExportError, Precision, run_export
from lredit.export.specs import SPECS, ExportSettings
from lredit.graphs import ALL_GRAPHS, OPTIONAL_GRAPHS, PIPELINE_GRAPHS

SETTINGS = ExportSettings(working_size=64)
# Tolerances of this test (fresh inputs, batch other than the export batch): |ort - torch| max abs.
FP32_ATOL = 1e-4
FP16_ATOL = 5e-2
TESTED = ["dino", "rgn", "rgn_roi", "clip_text", "clip_vision", "sd_text", "unet", "vae_encoder", "vae_decoder"]


def test_every_spec_has_a_parity_test():
    assert set(SPECS) == set(TESTED), "add the new graph to TESTED (and check its parity below)"


def test_one_spec_per_graph_name_and_optional_graphs_only_on_request():
    assert tuple(SPECS) == ALL_GRAPHS
    assert ExportConfig(out="x").graphs == PIPELINE_GRAPHS and not set(OPTIONAL_GRAPHS) & set(PIPELINE_GRAPHS)


@pytest.fixture(scope="module", params=["fp32", "fp16"])
def exported(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"bundle_{request.param}")
    statuses = {}
    manifest = run_export(ExportConfig(out=out, precision=Precision(request.param), settings=SETTINGS, graphs=ALL_GRAPHS),
                          lambda g, s: statuses.setdefault(g, s))
    return request.param, out, manifest, statuses


@pytest.mark.parametrize("graph", TESTED)
def test_graph_parity_on_fresh_inputs(exported, tiny_models, graph):
    import onnxruntime as ort

    precision, out, manifest, _ = exported
    spec = SPECS[graph]
    sizes = spec.static_sizes(tiny_models, SETTINGS)
    rng = np.random.default_rng(99)
    dynamic = {a.name: a.other_point(sizes, prefer="max") for a in spec.axes}
    feeds = spec.dummy_inputs(sizes, rng, dynamic=dynamic)
    sess = ort.InferenceSession(str(out / manifest["graphs"][graph]["file"]), providers=["CPUExecutionProvider"])
    got = sess.run(None, feeds)
    with torch.no_grad():
        ref = spec.wrap(tiny_models, SETTINGS)(*(torch.from_numpy(feeds[t.name]) for t in spec.inputs))
    ref = (ref,) if isinstance(ref, torch.Tensor) else ref
    atol = FP16_ATOL if precision == "fp16" and spec.fp16 else FP32_ATOL
    for t, g, r in zip(spec.outputs, got, ref):
        assert g.shape == tuple(r.shape), t.name
        assert np.abs(g - r.numpy()).max() <= atol, f"{graph}.{t.name}"
        assert np.std(r.numpy()) > 0, f"{graph}.{t.name}: constant output makes parity meaningless"


@pytest.mark.parametrize("latent", [8, 5])
def test_the_vae_decoder_decodes_the_full_latent_and_crops_of_it(exported, tiny_models, latent):
    """The decoder is exported at the full latent (8 at 64 px) and traced dynamic below it:
    search's pruning decodes square crops (5 here) through the same graph."""
    import onnxruntime as ort

    precision, out, manifest, _ = exported
    spec = SPECS["vae_decoder"]
    feeds = spec.dummy_inputs(spec.static_sizes(tiny_models, SETTINGS), np.random.default_rng(7), dynamic={"batch": 3, "latent": latent})
    sess = ort.InferenceSession(str(out / manifest["graphs"]["vae_decoder"]["file"]), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, feeds)
    with torch.no_grad():
        ref = spec.wrap(tiny_models, SETTINGS)(torch.from_numpy(feeds["latents"])).numpy()
    assert got.shape == ref.shape == (3, 3, 8 * latent, 8 * latent)
    assert np.abs(got - ref).max() <= (FP16_ATOL if precision == "fp16" else FP32_ATOL)


def test_manifest_lists_graphs_with_matching_sha256_and_parity_within_tolerance(exported):
    precision, out, manifest, statuses = exported
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["complete"] is True and on_disk["format_version"] == layout.FORMAT_VERSION
    assert set(on_disk["graphs"]) == set(TESTED)
    for name, entry in on_disk["graphs"].items():
        for rel, digest in entry["files"].items():
            assert layout.sha256_file(out / rel) == digest
        expected = precision if SPECS[name].fp16 else "fp32"
        assert entry["precision"] == expected
        assert entry["fp32_ops"] == (list(SPECS[name].fp16_keep_fp32) if expected == "fp16" else [])
    parity = json.loads((out / "parity.json").read_text())
    assert all(r["ok"] for g in parity.values() for r in g.values())
    sched = on_disk["scheduler"]
    assert len(sched["alphas_cumprod"]) == 1000 and len(sched["tables"]["model"]["steps"]["50"]["timesteps"]) == 51
    assert on_disk["pipeline"]["half_sizes"] == [4, 6, 8, 10, 12, 14]
    assert set(statuses.values()) == {"exported"}


def test_rgn_roi_graph_matches_reference_pooling(exported, tiny_models):
    import onnxruntime as ort

    from lredit.kernels.geometry import proposal_boxes
    from lredit.kernels.roi_pool_ref import pool_proposals, project_tokens

    _, out, manifest, _ = exported
    rng = np.random.default_rng(5)
    tokens = rng.standard_normal((1024, 32)).astype(np.float32) * 3
    anchors_rc = np.array([[0, 0], [5, 30], [16, 16], [31, 2]])
    boxes = proposal_boxes(anchors_rc, SETTINGS.half_sizes, (32, 32), fix_axes=True)
    w, b = tiny_models.region_net.projection_arrays()
    pooled = pool_proposals(project_tokens(tokens, (32, 32), w, b), boxes, 8)
    with torch.no_grad():
        ref = tiny_models.region_net(torch.from_numpy(pooled)).numpy()
    sess = ort.InferenceSession(str(out / manifest["graphs"]["rgn_roi"]["file"]), providers=["CPUExecutionProvider"])
    xy = anchors_rc[:, ::-1].astype(np.float32)
    got = sess.run(None, {"features": tokens[None], "anchors": xy})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_reexport_reuses_detects_corruption_and_marks_interrupts(tmp_path):
    out = tmp_path / "b"
    graphs = ("rgn", "sd_text")
    cfg = ExportConfig(out=out, graphs=graphs, settings=SETTINGS)
    run_export(cfg)
    statuses = {}
    run_export(cfg, lambda g, s: statuses.__setitem__(g, s))
    assert statuses == {g: "reused (unchanged)" for g in graphs}
    with open(out / "onnx" / "sd_text.onnx", "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02")
    statuses.clear()
    run_export(cfg, lambda g, s: statuses.__setitem__(g, s))
    assert statuses["rgn"] == "reused (unchanged)" and statuses["sd_text"].startswith("rebuilt")

    def interrupt(graph, status):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_export(ExportConfig(out=out, graphs=graphs, settings=SETTINGS, precision=Precision.FP16), interrupt)
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    assert not list(out.glob(".staging-*"))


def test_refuses_foreign_folder_and_unknown_graph(tmp_path):
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(ExportError, match="without manifest.json; refusing"):
        run_export(ExportConfig(out=tmp_path, graphs=("rgn",), settings=SETTINGS))
    assert (tmp_path / "mine.txt").read_text() == "user data"
    with pytest.raises(ExportError, match="unknown graphs"):
        run_export(ExportConfig(out=tmp_path / "x", graphs=("nope",)))


def test_trt_without_tensorrt_fails_at_once(tmp_path, capsys):
    from lredit.export.cli import main

    try:
        import tensorrt  # noqa: F401

        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    code = main(["--out", str(tmp_path / "b"), "--trt", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "TensorRT is not installed: pip install 'lredit[trt]'" in err
    assert not (tmp_path / "b").exists()


def test_tensorrt_parser_builds_every_pipeline_graph(exported):
    """tensorrt-rtx builds engines ahead of time without a GPU: proof that TensorRT's ONNX parser
    takes every graph (CI installs it; see .ci/run). rgn_roi needs TensorRT's ROIAlign plugin,
    which full TensorRT registers and tensorrt-rtx does not ship."""
    trt = pytest.importorskip("tensorrt_rtx", reason="pip install tensorrt-rtx-cu13 to run the TensorRT parse test")
    from lredit.export.trt_build import build_engines

    precision, out, manifest, _ = exported
    graphs = [g for g in manifest["graphs"] if g != "rgn_roi"]
    engines = build_engines(out, json.loads((out / "manifest.json").read_text()), trt=trt, sm="aot", graphs=graphs)
    assert sorted(engines) == sorted(graphs)
    for name, rel in engines.items():
        assert (out / rel).stat().st_size > 0
        graph_precision = precision if SPECS[name].fp16 else "fp32"
        assert rel.startswith(f"trt/{name}.{graph_precision}.") and rel.endswith(f".trt{trt.__version__}.aot.engine")
    with pytest.raises(ExportError, match="ROIAlign plugin"):
        build_engines(out, json.loads((out / "manifest.json").read_text()), trt=trt, sm="aot", graphs=["rgn_roi"])


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_large_graph_path_external_data_and_fp16(tiny_models, tmp_path, monkeypatch, precision):
    """The path taken by graphs over 1 GB (full-size UNet): weights in one .data file, fp16 casts
    placed from shapes inferred on disk. Forced here on the tiny UNet by lowering the limit."""
    from lredit.export import onnx_export

    monkeypatch.setattr(onnx_export, "TWO_GB", 1000)
    spec = SPECS["unet"]
    sizes = spec.static_sizes(tiny_models, SETTINGS)
    path = tmp_path / "onnx" / "unet.onnx"
    files = onnx_export.export_onnx(spec, spec.wrap(tiny_models, SETTINGS), sizes, path, precision, 17)
    assert files == [path, path.with_name("unet.onnx.data")]
    assert sorted(p.name for p in path.parent.iterdir()) == ["unet.onnx", "unet.onnx.data"]  # no scratch left
    report = onnx_export.check_parity(spec, spec.wrap(tiny_models, SETTINGS), sizes, path, precision, 3)
    atol = FP16_ATOL if precision == "fp16" else FP32_ATOL
    assert report["noise_pred"]["ok"] and report["noise_pred"]["max_abs"] <= atol


def test_engines_are_rebuilt_only_when_their_inputs_changed(tmp_path):
    trt = pytest.importorskip("tensorrt_rtx", reason="pip install tensorrt-rtx-cu13 to run the TensorRT build test")
    from lredit.export.trt_build import build_engines

    out = tmp_path / "b"
    run_export(ExportConfig(out=out, graphs=("rgn",), settings=SETTINGS))

    def build():
        said = []
        build_engines(out, json.loads((out / "manifest.json").read_text()), trt=trt, sm="aot",
                      on_graph=lambda name, status: said.append(status))
        return said[0]

    assert build().startswith("engine built (none yet)")
    assert build().startswith("engine reused (unchanged)")
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["graphs"]["rgn"]
    entry["files"][entry["file"]] = "0" * 64  # as after a re-export with other weights
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert build().startswith("engine built (its ONNX graph changed)")
    engine = out / json.loads((out / "manifest.json").read_text())["graphs"]["rgn"]["engine"]["file"]
    engine.write_bytes(engine.read_bytes()[:-10] + b"0123456789")
    assert build().startswith("engine built (file corrupt)")
    assert build().startswith("engine reused (unchanged)")


def _graph_files(manifest: dict) -> list[str]:
    return sorted({f for entry in manifest["graphs"].values() for f in entry["files"] if f.endswith(".onnx")})


def test_no_weight_is_stored_twice(exported):
    """Every graph file of a full tiny export: no initializer's bytes live in two places (the ORT
    variants and rgn_roi reference the weights files of the graphs they share with)."""
    from lredit.export.weights_audit import duplicate_weights, stored_weights

    _, out, manifest, _ = exported
    graphs = _graph_files(manifest)
    assert "onnx/rgn_roi.onnx" in graphs and sum(len(stored_weights(out, g)) for g in graphs) > 100
    pairs = duplicate_weights(out, graphs)
    assert not pairs, [(a.graph, a.name, b.graph, b.name) for a, b in pairs[:5]]


def test_weights_audit_finds_a_copied_weight(exported, tmp_path):
    import onnx

    from lredit.export.weights_audit import duplicate_weights

    _, out, manifest, _ = exported
    (tmp_path / "onnx").mkdir()
    for name in ("rgn.onnx", "rgn.onnx.data"):
        (tmp_path / "onnx" / name).write_bytes((out / "onnx" / name).read_bytes())
    onnx.save(onnx.load(str(out / "onnx" / "rgn.onnx")), str(tmp_path / "onnx" / "copy.onnx"))  # weights embedded
    pairs = duplicate_weights(tmp_path, ["onnx/rgn.onnx", "onnx/copy.onnx"])
    assert pairs and {(a.store, b.store) for a, b in pairs} == {("onnx/rgn.onnx.data", "onnx/copy.onnx")}


def test_exported_files_get_the_umask_mode(tmp_path):
    """onnx writes external weights 0600 and mkstemp makes 0600; every bundle file gets the mode
    its siblings get from the umask (here 027: 0640)."""
    old = os.umask(0o027)
    try:
        run_export(ExportConfig(out=tmp_path / "b", graphs=("rgn", "rgn_roi", "vae_decoder"), settings=SETTINGS))
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "b").rglob("*") if p.is_file()]
    assert any(p.name == "vae_decoder.onnx.data" for p in files) and any(p.name == "manifest.json" for p in files)
    assert {p.relative_to(tmp_path).as_posix(): oct(p.stat().st_mode & 0o777) for p in files} == \
        {p.relative_to(tmp_path).as_posix(): oct(0o640) for p in files}
