"""Formatters over the lr-bench JSON document: a markdown table, a console table, a PNG chart."""

from __future__ import annotations

from pathlib import Path

from .record import STAGES


def _device_line(doc: dict) -> str:
    host = doc["host"]
    cores = f", {host['cores']} cores" if host.get("cores") else ""
    return f"{host['name']} ({host['kind']}{cores})"


def _fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def label(r: dict) -> str:
    """backend, with the engine's region mode unless it is the one-pass rgn (engine-ort/search)."""
    return r["backend"] + (f"/{r['regions']}" if r.get("regions") not in (None, "rgn") else "")


def summary_rows(doc: dict) -> list[list[str]]:
    rows = []
    for r in doc["records"]:
        if r["status"] != "ok":
            continue
        e2e, stages = r["end_to_end_ms"], r["stages_ms"]
        speedup = r.get("speedup_vs_authors")
        rows.append([
            label(r), str(r["anchors"]), str(r["steps"]), r["precision"], _fmt(e2e["p50"]), _fmt(e2e["p90"]),
            _fmt(stages.get("denoise_per_step", {}).get("p50"), 2), _fmt(stages.get("inpaint", {}).get("p50")),
            _fmt(r["edits_per_minute"], 2), "-" if r.get("unet_rows") is None else str(r["unet_rows"]),
            _fmt(r.get("load_ms"), 0), _fmt(r.get("steady_rss_mb"), 0),
            _fmt(r["peak_rss_mb"], 0) + ("" if r.get("isolation", "process") == "process" else " (shared)"),
            _fmt(r.get("peak_device_mb"), 0),
            "-" if speedup is None else f"{speedup:.2f}x" + (" (inpaint)" if r.get("scope") == "inpaint" else ""),
        ])
    return rows


SUMMARY_HEAD = ["backend", "K", "steps", "precision", "end-to-end p50 (ms)", "p90 (ms)", "denoise/step p50 (ms)",
                "inpaint p50 (ms)", "edits/min", "UNet rows", "load (ms)", "steady RSS (MB)", "peak RSS (MB)",
                "peak GPU (MB)", "speed-up vs authors"]


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


def markdown(doc: dict) -> str:
    first = next((r for r in doc["records"]), {})
    lines = [
        f"### lr-bench, {doc['date'][:10]}, {_device_line(doc)}",
        "",
        f"`{doc['command']}`",
        "",
        f"Models `{first.get('models')}`, {first.get('resolution')}x{first.get('resolution')}, scheduler "
        f"`{first.get('scheduler')}`, {first.get('runs')} timed runs after {first.get('warmup')} warm-up; "
        "times are medians (p50) and p90 of wall time (perf_counter) per run. Engine rows without a "
        "region mode are one-pass `rgn` edits; `/search` scores every (anchor, size) pair with pruning, "
        "`/search-noprune` without.",
        "",
        *_table(SUMMARY_HEAD, summary_rows(doc)),
        "",
        "Stages, p50 (ms):",
        "",
    ]
    stage_rows = [
        [label(r), str(r["anchors"]), str(r["steps"]),
         *(_fmt(r["stages_ms"].get(s, {}).get("p50"), 2) for s in STAGES)]
        for r in doc["records"] if r["status"] == "ok"
    ]
    lines += _table(["backend", "K", "steps", *STAGES], stage_rows)
    skipped = [r for r in doc["records"] if r["status"] != "ok"]
    if skipped:
        lines += ["", "Not measured:", ""]
        seen = set()
        for r in skipped:
            key = (label(r), r["reason"])
            if key not in seen:
                seen.add(key)
                lines.append(f"- `{label(r)}` ({r['status']}): {r['reason']}")
    notes = sorted({r["note"] for r in doc["records"] if r.get("note")})
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def console(doc: dict) -> str:
    rows = summary_rows(doc)
    head = SUMMARY_HEAD
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    out = [fmt.format(*head), *(fmt.format(*r) for r in rows)]
    for r in doc["records"]:
        if r["status"] != "ok":
            out.append(f"{label(r)} K={r['anchors']} steps={r['steps']}: {r['status']}: {r['reason']}")
    return "\n".join(out)


COLOURS = [(66, 133, 244), (219, 68, 55), (244, 180, 0), (15, 157, 88), (171, 71, 188), (0, 172, 193),
           (255, 112, 67), (158, 157, 36), (92, 107, 192), (240, 98, 146)]


def plot(doc: dict, path: Path) -> None:
    """Horizontal stacked bars of stage p50 per measured record, written as PNG (Pillow only)."""
    from io import BytesIO

    from PIL import Image, ImageDraw

    from lredit.atomic import write_bytes_atomic

    records = [r for r in doc["records"] if r["status"] == "ok"]
    label_w, bar_w, row_h, top = 260, 620, 26, 40
    height = top + row_h * max(len(records), 1) + 30 + 18 * ((len(STAGES) + 4) // 5)
    img = Image.new("RGB", (label_w + bar_w + 120, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 10), f"lr-bench {doc['date'][:10]} - {_device_line(doc)} - stage p50 (ms)", fill="black")
    longest = max((max(r["end_to_end_ms"]["p50"], sum(r["stages_ms"].get(s, {}).get("p50", 0.0) for s in STAGES))
                   for r in records), default=1.0)
    scale = bar_w / max(longest, 1e-9)
    for i, r in enumerate(records):
        y = top + i * row_h
        draw.text((10, y + 6), f"{label(r)} K={r['anchors']} n={r['steps']}", fill="black")
        x = float(label_w)
        if r.get("scope") == "inpaint":  # a peer timed as one block: grey, no stage split
            w = r["end_to_end_ms"]["p50"] * scale
            draw.rectangle([x, y + 4, x + w, y + row_h - 4], fill=(170, 170, 170))
            x += w
        for j, s in enumerate(STAGES):
            w = r["stages_ms"].get(s, {}).get("p50", 0.0) * scale
            if w > 0:
                draw.rectangle([x, y + 4, x + w, y + row_h - 4], fill=COLOURS[j % len(COLOURS)])
            x += w
        draw.text((x + 6, y + 6), f"{r['end_to_end_ms']['p50']:.0f}", fill="black")
    y = top + row_h * max(len(records), 1) + 10
    for j, s in enumerate(STAGES):
        cx, cy = 10 + (j % 5) * 170, y + 18 * (j // 5)
        draw.rectangle([cx, cy + 2, cx + 12, cy + 12], fill=COLOURS[j % len(COLOURS)])
        draw.text((cx + 18, cy), s, fill="black")
    if any(r.get("scope") == "inpaint" for r in records):
        cx, cy = 10 + (len(STAGES) % 5) * 170, y + 18 * (len(STAGES) // 5)
        draw.rectangle([cx, cy + 2, cx + 12, cy + 12], fill=(170, 170, 170))
        draw.text((cx + 18, cy), "inpaint only (peer)", fill="black")
    buf = BytesIO()
    img.save(buf, format="PNG")
    write_bytes_atomic(Path(path), buf.getvalue())
