"""Run import-linter on the checkout as a regular install lays it out, from any install.

    python tools/lint_imports.py          # the verdict CI gives, editable install or not

import-linter reads the package tree from the file system, and an editable install maps
`lredit.engine` to `engine/` through an import hook it cannot see. So this copies the sources into
a temporary `lredit/` tree exactly as pyproject.toml's `package-dir` maps them, puts it first on
PYTHONPATH and runs `lint-imports` with the project's contracts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def lay_out(dest: Path) -> None:
    """Copy every mapped package's Python files to dest/<dotted path>."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    for package in config["packages"]:
        source = ROOT / mapping.get(package, package.replace(".", "/"))
        target = dest.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            shutil.copy2(module, target / module.name)


def main() -> int:
    lint = shutil.which("lint-imports")
    if lint is None:
        print("lint_imports: lint-imports is not installed (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lredit-lint-") as tmp:
        lay_out(Path(tmp))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([tmp, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        return subprocess.run([lint, "--no-cache", "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
