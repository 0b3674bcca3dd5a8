"""Test data for the C++ host's ctest: OUT/bundle (a tiny bundle) and OUT/replay_*/ graph-io dumps
of the Python runtime's edits, one per case below (two seeds, every scheduler, paste-back, no
guidance). Used by tests/test_cpp_host.py and .ci/run.

    python cpp/tools/make_test_data.py OUT [--bundle EXISTING_TINY_BUNDLE]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

IMAGE = Path(__file__).resolve().parents[2] / "examples" / "table.png"
PROMPT = "a bowl of strawberries"
# The C++ host has region mode rgn (the RGN's argmax); Python's default without an RGN checkpoint
# is search, so every case names rgn.
CASES = {
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
    for name, overrides in CASES.items():
        editor.edit(IMAGE, PROMPT, dump_graph_io=out / name, regions="rgn", **overrides)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--bundle", type=Path, help="an existing tiny bundle (working size 64) to link instead of exporting one")
    args = parser.parse_args()
    make(args.out, args.bundle)


if __name__ == "__main__":
    main()
