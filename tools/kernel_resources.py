"""Builds kernels/roi_pool.cu with nvcc for each target SM, failing on any warning, and writes
the registers, shared memory and spills ptxas reports (`--resource-usage`) to RESOURCES.md.

    python tools/kernel_resources.py            # compile sm_80 and sm_90, write RESOURCES.md
    python tools/kernel_resources.py --check    # compile only (CI)
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from lredit.atomic import write_bytes_atomic
from lredit.errors import KernelBuildError
from lredit.kernels.loader import ENTRY_POINTS, SOURCE

TARGETS = (80, 90)
RESOURCES_MD = SOURCE.with_name("RESOURCES.md")
_ENTRY = re.compile(r"Compiling entry function '(\w+)' for 'sm_(\d+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers(?:.*?(\d+) bytes smem)?")


class NvccError(KernelBuildError):
    """nvcc is missing, failed, or warned (warnings are errors here)."""


def compile_with_nvcc(sm: int, out_dir: Path) -> dict[str, dict[str, int]]:
    """nvcc -cubin for sm_<sm>, warnings as errors -> {entry point: resource usage}."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        raise NvccError("nvcc is not on PATH; install the CUDA toolkit or put its bin/ on PATH")
    cmd = [nvcc, "-cubin", f"-arch=sm_{sm}", "-Werror", "all-warnings", "--resource-usage",
           "-o", str(Path(out_dir) / f"roi_pool.sm{sm}.cubin"), str(SOURCE)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    report = done.stdout + done.stderr
    if done.returncode != 0 or "warning" in report.lower():
        raise NvccError(f"nvcc for sm_{sm} failed or warned (exit {done.returncode}):\n{report}")
    return parse_resource_usage(report)


def parse_resource_usage(report: str) -> dict[str, dict[str, int]]:
    usage: dict[str, dict[str, int]] = {}
    entry = None
    for line in report.splitlines():
        if m := _ENTRY.search(line):
            entry = m.group(1)
            usage[entry] = {}
        elif entry and (m := _FRAME.search(line)):
            usage[entry].update(stack_bytes=int(m[1]), spill_stores=int(m[2]), spill_loads=int(m[3]))
        elif entry and (m := _USED.search(line)):
            usage[entry].update(registers=int(m[1]), static_smem_bytes=int(m[2] or 0))
    missing = set(ENTRY_POINTS) - set(usage)
    if missing:
        raise NvccError(f"ptxas reported no resource usage for {sorted(missing)}:\n{report}")
    return usage


def nvcc_version() -> str:
    out = subprocess.run([shutil.which("nvcc") or "nvcc", "--version"], capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1] if out.strip() else "unknown"


def markdown(per_sm: dict[int, dict[str, dict[str, int]]]) -> str:
    lines = [
        "# ROI-pool kernel resources",
        "",
        f"Written by `python tools/kernel_resources.py` on {date.today().isoformat()} with nvcc "
        f"({nvcc_version()}), from ptxas `--resource-usage`; the build fails on any warning.",
        "The fused variants also take `4 * d` bytes of dynamic shared memory per block (3 KB at d = 768).",
        "",
        "| SM | entry point | registers | static smem (B) | stack (B) | spill stores (B) | spill loads (B) |",
        "|---|---|---|---|---|---|---|",
    ]
    for sm, usage in per_sm.items():
        for entry in ENTRY_POINTS:
            u = usage[entry]
            lines.append(f"| sm_{sm} | `{entry}` | {u['registers']} | {u['static_smem_bytes']} | {u['stack_bytes']} | "
                         f"{u['spill_stores']} | {u['spill_loads']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/kernel_resources.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compile only; do not write RESOURCES.md")
    parser.add_argument("--out", type=Path, default=RESOURCES_MD, help="where to write the table")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            per_sm = {sm: compile_with_nvcc(sm, Path(tmp)) for sm in TARGETS}
    except NvccError as exc:
        print(f"kernels: error: {exc}", file=sys.stderr)
        return 1
    print(f"kernels: {SOURCE.name} builds for {', '.join(f'sm_{sm}' for sm in TARGETS)} without warnings")
    if not args.check:
        write_bytes_atomic(args.out, markdown(per_sm).encode())
        print(f"kernels: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
