"""Test data for the C++ host's ctest: OUT/bundle (a tiny bundle) and OUT/replay_*/ graph-io dumps
of the Python runtime's edits, one per case below: region mode rgn (two seeds, every scheduler,
paste-back, no guidance) and region mode search (two seeds x two schedulers x pruned and exact,
plus DPM-Solver with a source caption and paste-back, Euler without guidance, a capped UNet
batch). Used by tests/cpp/test_cpp_host.py and .ci/run.

    python cpp/tools/make_test_data.py OUT [--bundle EXISTING_TINY_BUNDLE]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

IMAGE = Path(__file__).resolve().parents[2] / "examples" / "table.png"
PROMPT = "a bowl of strawberries"
# Each case names its region mode: the tiny bundle has no RGN checkpoint, so the default is search.
RGN_CASES = {
    "replay_seed0": dict(anchors=4, steps=4, seed=0),
    "replay_seed1": dict(anchors=4, steps=4, seed=1),
    "replay_ddim_paste": dict(anchors=3, steps=3, seed=2, scheduler="ddim", paste_back=True),
    "replay_euler_noguide": dict(anchors=3, steps=3, seed=3, scheduler="euler", guidance=1.0),
    "replay_dpmpp": dict(anchors=3, steps=4, seed=4, scheduler="dpmpp_2m"),
    # The authors' anchor choice, axes, ROI scale, RGN layout and un-normalised DINO input (the C++
    # host has these switches; it inpaints the original image and takes the RGN's argmax).
    "replay_authors_switches": dict(anchors=3, steps=3, seed=5, distinct_anchors=False, fix_anchor_axes=False,
                                    fix_roi_scale=False, fix_rgn_layout=False, dino_imagenet_norm=False),
}
# Region search: K=3 anchors x M=6 sizes = 18 rows (36 UNet rows with guidance: chunked to the
# tiny bundle's UNet profile of 32), pruned at round(f x calls) for f in 0.2, 0.3, 0.6.
SEARCH_CASES = {
    f"replay_search_{sched}_seed{seed}{'' if prune else '_exact'}": dict(anchors=3, steps=4, seed=seed, scheduler=sched, prune=prune)
    for sched in ("pndm", "ddim") for seed in (0, 1) for prune in (True, False)
}
# regions=None: the default mode, which is search for a bundle without an RGN checkpoint.
SEARCH_CASES["replay_search_dpmpp_caption"] = dict(anchors=2, steps=5, seed=6, scheduler="dpmpp_2m", paste_back=True,
                                                   source_caption="a wooden table", regions=None)
SEARCH_CASES["replay_search_euler_noguide_capped"] = dict(anchors=2, steps=4, seed=7, scheduler="euler", guidance=1.0,
                                                          max_unet_batch=5, prune_keep=0.34)


def make(out: Path, bundle: Path | None = None) -> Path:
    from lredit.engine.frontends.editor import Editor

    out.mkdir(parents=True, exist_ok=True)
    link = out / "bundle"
    if bundle is None:
        subprocess.run([sys.executable, "-m", "lredit.export.cli", "--models", "tiny", "--out", str(link),
                        "--working-size", "64", "--no-progress"], check=True)
    elif not link.exists():
        link.symlink_to(Path(bundle).resolve())
    editor = Editor.from_bundle(link)
    for name, overrides in RGN_CASES.items():
        editor.edit(IMAGE, PROMPT, dump_graph_io=out / name, regions="rgn", **overrides)
    for name, overrides in SEARCH_CASES.items():
        settings = dict(overrides)
        caption, regions = settings.pop("source_caption", None), settings.pop("regions", "search")
        editor.edit(IMAGE, PROMPT, caption, dump_graph_io=out / name, regions=regions, **settings)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--bundle", type=Path, help="an existing tiny bundle (working size 64) to link instead of exporting one")
    args = parser.parse_args()
    make(args.out, args.bundle)


if __name__ == "__main__":
    main()
