"""lr-edit end to end on the shipped example, and every bad input: one-line error, no files."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lredit.config import EditConfig
from lredit.engine.frontends.cli import main, parse
from lredit.engine.ops import images
from lredit.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "table.png"
FAST = ["--working-size", "64", "--steps", "2", "--anchors", "3", "--no-progress"]


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_edit_writes_consistent_outputs(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(capsys, EXAMPLE, "a bowl of strawberries", "--out", out, *FAST)
    assert code == 0, err
    assert "random weights" in err and "pipeline check" in err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["candidate_00.png", "candidate_01.png", "candidate_02.png", "overlay.png", "report.json", "result.png"]
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["anchors"] == 3 and len(report["candidates"]) == 3
    chosen = report["chosen"]
    assert report["candidates"][chosen]["eligible"]
    assert max(c["score"] for c in report["candidates"] if c["eligible"]) == report["candidates"][chosen]["score"]
    result = np.asarray(Image.open(out / "result.png"))
    assert np.array_equal(result, np.asarray(Image.open(out / report["candidates"][chosen]["file"])))
    for c in report["candidates"]:
        assert c["half_size"] == report["config"]["half_sizes"][c["size_index"]]
        assert abs(sum(c["rgn_probabilities"]) - 1) < 1e-4
        x1, y1, x2, y2 = c["box_px"]
        assert 0 <= x1 <= x2 < 64 and 0 <= y1 <= y2 < 64
    for stage in ("dino", "anchors", "roi_pool", "rgn", "masks", "text", "vae_encode", "denoise", "vae_decode", "rank"):
        assert report["timings_ms"][stage] >= 0
    assert report["versions"]["torch"] and report["warnings"] == []
    # a second run into the same folder refuses, --overwrite replaces
    code, _, err = run(capsys, EXAMPLE, "a cat", "--out", out, *FAST)
    assert code == 2 and "already holds lredit outputs" in err and "--overwrite" in err
    code, _, err = run(capsys, EXAMPLE, "a cat", "--out", out, "--overwrite", *FAST)
    assert code == 0 and json.loads((out / "report.json").read_text())["prompt"] == "a cat"


def test_torch_cuda_backend_on_the_cpu_makes_the_reference_edit(tmp_path, capsys):
    reports = {}
    for backend in ("torch", "torch-cuda"):
        code, _, err = run(capsys, EXAMPLE, "a bowl of strawberries", "--out", tmp_path / backend, "--backend", backend,
                           "--regions", "rgn", *FAST)
        assert code == 0, err
        reports[backend] = json.loads((tmp_path / backend / "report.json").read_text())
    want, got = reports["torch"], reports["torch-cuda"]
    assert got["backend"] == "torch-cuda" and got["chosen"] == want["chosen"]
    assert [c["box_px"] for c in got["candidates"]] == [c["box_px"] for c in want["candidates"]]


def test_long_prompt_truncation_is_reported(tmp_path, capsys):
    out = tmp_path / "o"
    code, _, err = run(capsys, EXAMPLE, "red " * 90, "--out", out, *FAST)
    assert code == 0
    warnings = json.loads((out / "report.json").read_text())["warnings"]
    assert len(warnings) == 1 and "truncated" in warnings[0] and "96 tokens" in warnings[0]
    assert "warning: prompt has 96 tokens" in err


def _bad_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:-40])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    return {
        "missing": (tmp_path / "nope.png", "image not found"),
        "text": (text, "not an image Pillow can read"),
        "truncated": (truncated, "cannot decode image"),
        "one_pixel": (tiny, "is 1x1 pixels; at least 16"),
    }


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "one_pixel"])
def test_bad_images_fail_cleanly(tmp_path, capsys, case):
    path, message = _bad_files(tmp_path)[case]
    out = tmp_path / "out"
    code, _, err = run(capsys, path, "a cat", "--out", out, *FAST)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("lr-edit: error:") and message in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    "args,message",
    [
        (["   "], "prompt is empty"),
        (["a cat", "--anchors", "2000"], "anchors=2000 requested but the 32x32 DINO feature map has only 1024"),
        (["a cat", "--steps", "0"], "steps=0"),
        (["a cat", "--working-size", "100"], "working_size=100 (expected a multiple of 8"),
        (["a cat", "--models", "/no/such/models"], "neither a preset"),
        (["a cat", "--final-pick", "best"], "argument --final-pick: invalid choice: 'best'"),
        (["a cat", "--backend", "torch-cuda", "--precision", "fp16"], "precision fp16 needs a CUDA device"),
    ],
)
def test_bad_arguments_fail_cleanly(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code, _, err = run(capsys, EXAMPLE, *args[:1], "--out", out, *FAST, *args[1:])
    errors = [line for line in err.splitlines() if line.startswith("lr-edit: error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0]
    assert not out.exists() or not any(out.iterdir())


def test_unwritable_out_fails_before_work(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("mine")
    code, _, err = run(capsys, EXAMPLE, "a cat", "--out", blocker / "sub", *FAST)
    assert code == 2 and "is not a folder" in err
    assert blocker.read_text() == "mine"


def test_odd_modes_become_rgb(tmp_path):
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    got = np.asarray(images.load_image(_save(rgba, tmp_path / "a.png")))
    assert got[1, 1].tolist() == [255, 255, 255] and got[0, 0].tolist() == [0, 0, 255]  # over white
    deep = Image.fromarray(np.full((32, 32), 65535, dtype=np.uint16))
    assert np.asarray(images.load_image(_save(deep, tmp_path / "d.png")))[0, 0].tolist() == [255, 255, 255]
    gray = Image.new("L", (32, 32), 100)
    assert np.asarray(images.load_image(_save(gray, tmp_path / "g.png")))[0, 0].tolist() == [100, 100, 100]
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))
    assert np.asarray(images.load_image(_save(cmyk, tmp_path / "c.jpg")))[0, 0, 0] > 200  # red
    palette = Image.new("P", (32, 32), 3)
    assert images.load_image(_save(palette, tmp_path / "p.png")).mode == "RGB"


def test_rgba_edit_runs(tmp_path, capsys):
    path = _save(Image.open(EXAMPLE).convert("RGBA"), tmp_path / "rgba.png")
    code, _, err = run(capsys, path, "a cat", "--out", tmp_path / "o", *FAST)
    assert code == 0, err


def test_huge_image_is_downscaled(tmp_path):
    path = _save(Image.new("L", (10000, 10000), 128), tmp_path / "huge.png")
    img = images.load_image(path)
    assert img.size == (10000, 10000) and img.mode == "RGB"
    assert images.dino_pixels(img, 256, True).shape == (1, 3, 256, 256)
    with pytest.raises(InputError, match="the limit is"):
        images.check_size((20000, 10000), "big")


def _save(img, path):
    img.save(path)
    return path


def test_progress_bar_counts_unet_calls_from_the_start(tmp_path, capsys):
    # PNDM (PLMS) runs steps + 1 UNet calls: 2 steps -> 0/3 ... 3/3, never a total of 2.
    fast = [a for a in FAST if a != "--no-progress"]
    code, _, err = run(capsys, EXAMPLE, "a cat", "--out", tmp_path / "o", *fast, "--scheduler", "pndm", "--regions", "rgn")
    assert code == 0, err
    bar = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("denoise")]
    assert bar and "0/3" in bar[0] and "3/3" in bar[-1], bar
    assert not any("/2 " in line for line in bar), bar


def test_a_models_folder_sets_its_settings_under_the_command_line(tmp_path):
    """geometry.json of a models folder (the shapes world's: 128 px, 20 steps, paste-back, the pick
    by the objective) fills what the command line leaves out; a bundle's manifest rules instead."""
    _, cfg = parse([str(EXAMPLE), "a cat", "--models", "shapes"])
    assert (cfg.working_size, cfg.steps, cfg.paste_back, cfg.final_pick) == (128, 20, True, "objective")
    _, cfg = parse([str(EXAMPLE), "a cat", "--models", "shapes", "--steps", "4", "--final-pick", "rank"])
    assert (cfg.working_size, cfg.steps, cfg.final_pick) == (128, 4, "rank")
    _, cfg = parse([str(EXAMPLE), "a cat", "--models", "shapes", "--bundle", str(tmp_path)])
    assert (cfg.working_size, cfg.final_pick) == (EditConfig().working_size, "rank")
    _, cfg = parse([str(EXAMPLE), "a cat", "--models", "tiny"])
    assert cfg == EditConfig()
