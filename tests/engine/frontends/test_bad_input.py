"""Issue #24, lr-edit: every kind of bad input ends in exit 2 and one line naming the problem
(no traceback), leaves no partial file and loses no user file. Tiny models, 64 px, 2 steps."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from lredit.devices import resolve_device
from lredit.engine.frontends.cli import main
from lredit.engine.ops import images
from lredit.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "table.png"
FAST = ["--working-size", "64", "--steps", "2", "--anchors", "3", "--no-progress"]
# A JPEG EXIF block, truncated and with two bytes flipped: Pillow's EXIF reader raises struct.error.
BROKEN_EXIF = bytes.fromhex(
    "4578696600004d4d002a00000008000401000002000000330000003e0112000300000001000600001f6900040000000100000072882500"
    "040000000100000098000000007878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
    "787878787878007c000190030002000000140000008400000000323032303a30313a30312030303a30303a303000000100010002")


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, message):
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("lr-edit: error:")]
    assert code == 2, err
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err
    assert errors[0] == lines[-1]  # nothing after it: the error is the last word, on one line


@pytest.mark.parametrize(
    "args,message",
    [
        (["--steps", "1000"], "--steps 1000: the 'model' scheduler's table of 1000 timesteps takes at most 999 steps"),
        (["--steps", "1001"], "steps=1001 (expected an integer in 1..1000)"),
        (["--seed", "-1"], "seed=-1 (expected an integer in 0..2**64-1"),
        (["--seed", str(2**64)], f"seed={2**64} (expected an integer in 0..2**64-1"),
        (["--max-unet-batch", "1"], "max_unet_batch=1 (expected 0 (no cap) or an integer >= 2 with guidance"),
        (["--device", "bogus"], "--device 'bogus' is unknown; expected 'cpu', 'cuda' or 'cuda:N'"),
        (["--device", "cuda:x"], "--device 'cuda:x' is unknown"),
        (["--steps", "ten"], "argument --steps: invalid int value: 'ten'"),
        (["--prune-fractions", "a,b"], "is not a comma-separated list of fractions"),
    ],
)
def test_bad_options_are_refused_before_any_model_loads(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code, _, err = run(capsys, EXAMPLE, "a cat", "--out", out, *FAST, *args)
    assert_one_line_error(code, err, message)
    assert not out.exists()


def test_cuda_without_a_gpu_is_refused_unless_a_fallback_is_asked_for(tmp_path, capsys):
    with pytest.raises(InputError, match="--device cuda: no CUDA GPU is visible; use --device cpu, or add --cpu-fallback"):
        resolve_device("cuda", cpu_fallback=False, gpus=0)
    with pytest.raises(InputError, match=r"--device cuda:2: only 1 CUDA GPU\(s\) are visible"):
        resolve_device("cuda:2", cpu_fallback=False, gpus=1)
    assert resolve_device("cuda", cpu_fallback=True, gpus=0) == "cpu"
    assert resolve_device("cuda:0", cpu_fallback=False, gpus=1) == "cuda:0"
    from lredit.devices import cuda_device_count

    if cuda_device_count() == 0:  # this machine: the real check, through lr-edit
        code, _, err = run(capsys, EXAMPLE, "a cat", "--out", tmp_path / "o", "--device", "cuda", *FAST)
        assert_one_line_error(code, err, "--device cuda: no CUDA GPU is visible")
        assert not (tmp_path / "o").exists()


def test_dump_graph_io_naming_a_file_is_refused(tmp_path, capsys):
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    code, _, err = run(capsys, EXAMPLE, "a cat", "--out", tmp_path / "out", "--dump-graph-io", mine, *FAST)
    assert_one_line_error(code, err, f"--dump-graph-io {mine} exists and is not a folder")
    assert mine.read_text() == "mine" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["prompt", "--source-caption"])
def test_prompts_that_are_not_utf8_are_refused(tmp_path, capsys, where):
    bad = os.fsdecode(b"a caf\xe9 table")  # how Python hands argv bytes that are not UTF-8 to main
    args = [bad, "--source-caption", "fruit"] if where == "prompt" else ["a cat", "--source-caption", bad]
    code, _, err = run(capsys, EXAMPLE, *args, "--out", tmp_path / "out", *FAST)
    assert_one_line_error(code, err, f"{where} is not valid UTF-8 text (byte 0xe9 at character 5)")
    assert not (tmp_path / "out").exists()


def _corrupt_images(tmp_path):
    """One file per way the decoder fails: each must end as the one-line 'cannot decode' error."""
    png = tmp_path / "good.png"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(png)
    data = png.read_bytes()
    bad_crc = bytearray(data)
    bad_crc[30] ^= 0xFF  # inside IHDR: CRC mismatch
    gif = tmp_path / "g.gif"
    Image.new("P", (64, 64), 3).save(gif)
    tiff = tmp_path / "t.tif"
    Image.new("RGB", (64, 64)).save(tiff)
    bad_tiff = bytearray(tiff.read_bytes())
    bad_tiff[4:8] = (10**6).to_bytes(4, "little")  # first IFD offset past the end
    files = {"bad_crc.png": bytes(bad_crc), "cut.gif": gif.read_bytes()[:40], "bad_ifd.tif": bytes(bad_tiff),
             "cut.png": data[:60]}
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
    return [tmp_path / name for name in files]


def test_every_decoder_failure_is_one_line(tmp_path, capsys):
    for path in _corrupt_images(tmp_path):
        code, _, err = run(capsys, path, "a cat", "--out", tmp_path / "out", *FAST)
        assert code == 2 and "Traceback" not in err and err.count("\n") == 1, (path, err)
        assert str(path) in err and ("cannot decode image" in err or "not an image Pillow can read" in err), err


def test_broken_exif_is_ignored_with_a_warning(tmp_path, caplog):
    path = tmp_path / "exif.jpg"
    Image.new("RGB", (48, 32), (200, 10, 10)).save(path, "JPEG", exif=BROKEN_EXIF)
    with caplog.at_level(logging.WARNING, logger="lredit.engine.ops.images"):
        img = images.load_image(path)
    assert img.size == (48, 32) and img.mode == "RGB"  # used as stored: the rotation hint is lost
    assert any("ignoring its unreadable EXIF block (error:" in r.getMessage() for r in caplog.records)


def test_a_file_name_with_a_newline_is_printed_on_one_line(tmp_path, capsys):
    path = tmp_path / "two\nlines.png"
    path.write_text("not an image")
    code, _, err = run(capsys, path, "a cat", "--out", tmp_path / "out", *FAST)
    assert code == 2 and err.count("\n") == 1
    assert repr(str(path)) in err  # shown as a Python literal: 'two\nlines.png'


def test_overwrite_keeps_user_files_and_removes_only_recorded_ones(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(capsys, EXAMPLE, "a cat", "--out", out, *FAST)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["outputs"] == ["result.png", "overlay.png", "candidate_00.png", "candidate_01.png",
                                 "candidate_02.png", "report.json"]
    (out / "candidate_mine.png").write_bytes(b"my own file")
    (out / "notes.txt").write_text("mine")
    fast_two = [a if a != "3" else "2" for a in FAST]  # 2 anchors: candidate_02 is stale
    code, _, err = run(capsys, EXAMPLE, "a dog", "--out", out, "--overwrite", *fast_two)
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["candidate_00.png", "candidate_01.png", "candidate_mine.png", "notes.txt", "overlay.png",
                     "report.json", "result.png"]
    assert (out / "candidate_mine.png").read_bytes() == b"my own file"


def test_a_failed_overwrite_leaves_the_folder_as_it_was(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(capsys, EXAMPLE, "a cat", "--out", out, *FAST)
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "report.json").unlink()
    (out / "report.json").mkdir()  # one target cannot be written
    del before["report.json"]
    code, _, err = run(capsys, EXAMPLE, "a dog", "--out", out, "--overwrite", *FAST)
    assert_one_line_error(code, err, "report.json: it exists and is not a plain file")
    after = {p.name: (None if p.is_dir() else p.read_bytes()) for p in out.iterdir()}
    assert after == {**before, "report.json": None}  # nothing replaced, nothing new, no staging left


# Runs lr-edit as a child of a fresh Python, which reports that child's peak RSS (kB).
PEAK_OF_CHILD = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "assert done.returncode == 0, done.stderr\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def _lr_edit_peak_kb(image: Path, out: Path, env: dict) -> int:
    edit = [sys.executable, "-m", "lredit.engine.frontends.cli", str(image), "a cat", "--out", str(out), *FAST]
    done = subprocess.run([sys.executable, "-c", PEAK_OF_CHILD, *edit], capture_output=True, text=True, timeout=600,
                          env=env)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_a_sliver_is_cropped_before_it_is_resized(tmp_path, safe_path_env):
    """A 16 x 80,000 PNG: lr-edit peaks within 100 MB of a 64 x 64 image's run (it peaked at
    1.5 GB: the short side was upscaled to 256 for DINO before the centre crop)."""
    sliver, small = tmp_path / "sliver.png", tmp_path / "small.png"
    Image.new("RGB", (16, 80_000), (90, 120, 30)).save(sliver)
    Image.new("RGB", (64, 64), (90, 120, 30)).save(small)
    peak, base = (_lr_edit_peak_kb(sliver, tmp_path / "a", safe_path_env),
                  _lr_edit_peak_kb(small, tmp_path / "b", safe_path_env))
    assert peak - base < 100_000, (peak, base)
    crop = images.square_crop(images.load_image(sliver), 512)
    assert crop.size == (512, 512) and crop.getpixel((256, 256)) == (90, 120, 30)


@pytest.mark.parametrize("shape", [(300, 40), (16, 800), (96, 128)])
def test_the_windowed_crop_matches_the_full_resize(monkeypatch, shape):
    """Past RESIZE_PIXELS only the window's source rows are resampled, horizontal pass first as
    Pillow does the full resize: equal on slivers, within 2 levels on 0.5% of pixels elsewhere
    (the window's box coordinates round differently)."""
    import numpy as np

    img = Image.fromarray(np.random.default_rng(3).integers(0, 256, (*shape, 3), dtype=np.uint8))
    full = np.asarray(images.square_crop(img, 224)).astype(int)
    monkeypatch.setattr(images, "RESIZE_PIXELS", 1)
    window = np.asarray(images.square_crop(img, 224)).astype(int)
    assert np.abs(full - window).max() <= 2 and (full != window).mean() < 0.005
    if min(shape) < 64:
        assert np.array_equal(full, window)
