"""Writing an edit's files: result.png, candidate_XX.png, overlay.png, report.json.

Nothing is half-written: everything goes to a staging folder first, every target is checked, then
the set is swapped in (and put back on failure). The report lists the files written
(`outputs`); a folder that already holds lredit outputs is only replaced with `overwrite=True`,
which removes only files an earlier report listed, never files matched by a pattern.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lredit.engine.core.pipeline import EditResult
from lredit.errors import OutputError
from lredit.kernels.geometry import cells_to_pixels
from lredit.versions import versions

OUTPUT_NAMES = ("result.png", "overlay.png", "report.json")
REPORT = "report.json"
_CANDIDATE = re.compile(r"candidate_[0-9]{2,}\.png")


def candidate_name(k: int) -> str:
    return f"candidate_{k:02d}.png"


def recorded_outputs(out: Path) -> set[str]:
    """The files the report in `out` says lredit wrote there (nothing when there is no readable
    report): what --overwrite may remove. Only plain names, never a path out of the folder."""
    try:
        report = json.loads((Path(out) / REPORT).read_text())
    except (OSError, ValueError, RecursionError):
        return set()
    names = report.get("outputs") if isinstance(report, dict) else None
    if not isinstance(names, list):  # a report from before the list: its candidates' files
        rows = report.get("candidates", []) if isinstance(report, dict) else []
        names = [*OUTPUT_NAMES, *(c.get("file") for c in rows if isinstance(c, dict))] if isinstance(rows, list) else []
    return {n for n in names if isinstance(n, str) and n and Path(n).name == n and n not in (".", "..")}


def prepare_output_dir(out: Path, overwrite: bool) -> Path:
    """Check up front (before any model work) that `out` can take the outputs."""
    out = Path(out)
    check_folder_writable(out, "--out")
    if out.is_dir() and not overwrite:
        ours = [p.name for p in out.iterdir()
                if p.name in OUTPUT_NAMES or _CANDIDATE.fullmatch(p.name) or p.name in recorded_outputs(out)]
        if ours:
            raise OutputError(f"--out {out} already holds lredit outputs ({', '.join(sorted(ours)[:3])}); "
                              "pass --overwrite or choose another folder")
    return out


def check_folder_writable(folder: Path, flag: str) -> None:
    """`folder` is, or can be created as, a folder this process can write in."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{flag} {folder} exists and is not a folder")
    probe_dir = folder if folder.is_dir() else _existing_parent(folder)
    try:
        with tempfile.NamedTemporaryFile(dir=probe_dir, prefix=".lredit-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to {flag} folder {folder}: {exc.strerror or exc}") from None


def _existing_parent(path: Path) -> Path:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot create output folder {path}: {parent} is not a folder")
            return parent
    raise OutputError(f"cannot create output folder {path}")


def write_outputs(result: EditResult, out: Path, report: dict, *, overwrite: bool = False) -> list[Path]:
    """Stage every file, check every target, then swap the whole set in: on any failure the
    folder is left as it was. With `overwrite`, files an earlier report recorded and this edit
    does not write are removed; nothing else is. Returns the final paths."""
    out = prepare_output_dir(out, overwrite)
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out, prefix=".lredit-staging-"))
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    try:
        images = {"result.png": result.image, "overlay.png": overlay(result)}
        images.update({candidate_name(k): cand for k, cand in enumerate(result.candidates)})
        names = [*images, REPORT]
        report = {**report, "outputs": names}
        stale = (recorded_outputs(out) - set(names)) if overwrite else set()
        for name, img in images.items():
            img.save(staging / name, format="PNG")
        (staging / REPORT).write_text(report_json(report, indent=2) + "\n")
        _check_targets(out, names, stale)
        _swap_in(staging, out, names, sorted(stale))
        return [out / name for name in names]
    except OSError as exc:
        raise OutputError(f"writing outputs to {out} failed: {exc.strerror or exc}; the folder was left as it was") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_targets(out: Path, names: list[str], stale: set[str]) -> None:
    """Every file to be replaced or removed is a plain file (or absent), before anything moves."""
    for name in [*names, *sorted(stale)]:
        target = out / name
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise OutputError(f"cannot write {target}: it exists and is not a plain file; move it away. "
                              f"Nothing in {out} was changed")


def _swap_in(staging: Path, out: Path, names: list[str], stale: list[str]) -> None:
    """Move the old files aside, the new ones in; on an OSError put everything back and re-raise."""
    backup = staging / ".old"
    backup.mkdir()
    moved_aside, moved_in = [], []
    try:
        for name in [*names, *stale]:
            if (out / name).exists():
                os.replace(out / name, backup / name)
                moved_aside.append(name)
        for name in names:
            os.replace(staging / name, out / name)
            moved_in.append(name)
    except OSError:
        for name in moved_in:
            (out / name).unlink(missing_ok=True)
        for name in moved_aside:
            os.replace(backup / name, out / name)
        raise


def overlay(result: EditResult) -> Image.Image:
    """The working image with every searched box faint (thin, translucent), every chosen box
    strong: the winner thick and green, the others red."""
    img = _searched_boxes(result)
    draw = ImageDraw.Draw(img)
    for k, (x1, y1, x2, y2) in enumerate(result.boxes_px.tolist()):
        if k != result.chosen:
            draw.rectangle((x1, y1, x2, y2), outline=(230, 40, 40), width=2)
            draw.text((x1 + 3, y1 + 2), str(k), fill=(230, 40, 40))
    x1, y1, x2, y2 = result.boxes_px[result.chosen].tolist()
    draw.rectangle((x1, y1, x2, y2), outline=(20, 220, 60), width=4)
    draw.text((x1 + 4, y1 + 3), f"{result.chosen} *", fill=(20, 220, 60))
    return img


def _searched_boxes(result: EditResult) -> Image.Image:
    """The source with each searched (anchor, size) box that was not chosen drawn thin at 35%."""
    base = result.source.convert("RGBA")
    regions = result.regions
    if regions is None:
        return result.source.copy()
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    boxes = cells_to_pixels(result.boxes_cells, result.grid, result.config.working_size)
    for k, m in zip(*np.nonzero(regions.searched)):
        if m != regions.chosen_size[k]:
            draw.rectangle(tuple(boxes[k, m].tolist()), outline=(255, 210, 60, 90), width=1)
    return Image.alpha_composite(base, layer).convert("RGB")


def build_report(result: EditResult, *, image: str, backend: str, models: dict) -> dict:
    cfg = result.config
    scores = result.scores
    candidates = []
    for k in range(len(result.candidates)):
        m = int(result.size_index[k])
        candidates.append(
            {
                "index": k,
                "anchor_row_col": result.anchors[k].tolist(),
                "half_size": cfg.half_sizes[m],
                "size_index": m,
                "box_cells": result.boxes_cells[k, m].tolist(),
                "box_px": result.boxes_px[k].tolist(),
                "rgn_probabilities": [round(float(p), 6) for p in result.probabilities[k]],
                "t2i": float(scores.t2i[k]),
                "i2i": float(scores.i2i[k]),
                "t2i_term": float(scores.t2i_norm[k]),
                "i2i_term": float(scores.i2i_norm[k]),
                "score": float(scores.score[k]),
                "eligible": bool(k in scores.eligible),
                **({} if scores.objective is None else {"objective_loss": float(scores.objective[k])}),
                "file": candidate_name(k),
            }
        )
    return {
        "lredit_report": 1,
        "image": image,
        "prompt": result.prompt,
        "source_caption": result.source_caption,
        "backend": backend,
        "models": models,
        "config": cfg.to_report(),
        "editor": result.editor,
        "feature_grid": list(result.grid),
        "working_size": cfg.working_size,
        "chosen": result.chosen,
        "candidates": candidates,
        "regions": None if result.regions is None else result.regions.to_report(),
        "timings_ms": result.timings,
        "warnings": result.warnings,
        "versions": versions(),
    }


def bundle_model_info(bundle, assets) -> dict:
    """The report's `models` entry for an edit run from an exported bundle."""
    return {"bundle": str(bundle), "families": assets.sources, "random_weights": assets.random_weights}


def report_json(report: dict, indent: int | None = None) -> str:
    """The report as JSON text (numpy scalars and arrays, paths converted)."""
    return json.dumps(report, indent=indent, default=_json_default)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
