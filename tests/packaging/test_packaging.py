"""Packaging and layering: the built wheel holds every file of the root package and the four
top-level folders, and import-linter's contracts hold on that installed tree (and fail when a
layer is broken)."""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS = PYPROJECT["tool"]["setuptools"]["package-dir"]
LINT_IMPORTS = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")


@pytest.fixture(scope="module")
def wheel_tree(tmp_path_factory) -> Path:
    """The wheel `pip wheel` builds from this checkout, unpacked (an installed tree)."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                           str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("lredit-*.whl")
    tree = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tree)
    return tree


def _source_files() -> dict[str, Path]:
    """Installed path -> checkout file, for every file under each mapped package folder."""
    top = {name: Path(folder) for name, folder in PACKAGE_DIRS.items() if name.count(".") <= 1}
    files = {}
    for package, folder in top.items():
        for path in (ROOT / folder).rglob("*"):
            rel = path.relative_to(ROOT / folder)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
                files["/".join([*package.split("."), *rel.parts])] = path
    return files


def test_the_wheel_holds_every_module_and_data_file(wheel_tree):
    expected = _source_files()
    assert {"lredit/__init__.py", "lredit/engine/core/pipeline.py", "lredit/kernels/roi_pool.cu", "lredit/data/clip_vocab.json",
            "lredit/bench/record.schema.json"} <= set(expected)
    missing = sorted(name for name in expected if not (wheel_tree / name).is_file())
    assert not missing, f"left out of the wheel (add the package or its data to pyproject.toml): {missing}"
    for name, source in expected.items():
        assert (wheel_tree / name).read_bytes() == source.read_bytes(), name


def _lint(tree: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True)


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (dev extra)")
def test_import_contracts_hold(wheel_tree, tmp_path):
    done = _lint(wheel_tree, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"Contracts: \d+ kept, 0 broken", done.stdout)


BREAKS = {
    "kernels imports engine": ("lredit/kernels/geometry.py", "import lredit.engine.ops.anchors", "Layers"),
    "export imports engine": ("lredit/export/models.py", "import lredit.engine.core.pipeline", "Layers"),
    "engine imports bench": ("lredit/engine/core/pipeline.py", "import lredit.bench.config", "Layers"),
    "root imports engine": ("lredit/config.py", "import lredit.engine.ops.timing", "root package imports no layer"),
    "engine outside reference imports export": ("lredit/engine/frontends/editor.py", "import lredit.export.models",
                                                "Only engine.runtimes.reference"),
    # The rooms of engine/: each one upwards import is a broken contract.
    "ops imports core": ("lredit/engine/ops/anchors.py", "import lredit.engine.core.pipeline", "engine rooms"),
    "regions imports core": ("lredit/engine/regions/modes.py", "import lredit.engine.core.denoise", "engine rooms"),
    # The region modes get a narrow door (regions.interface): not even a type hint names the core.
    "regions names core in a type hint": ("lredit/engine/regions/search.py",
                                          "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import lredit.engine.core.pipeline",
                                          "engine rooms"),
    "core imports runtimes": ("lredit/engine/core/pipeline.py", "import lredit.engine.runtimes.bundle_loader", "engine rooms"),
    "runtimes imports training": ("lredit/engine/runtimes/bundle_loader.py", "import lredit.engine.training.pair_losses",
                                  "engine rooms"),
    "training imports frontends": ("lredit/engine/training/pair_losses.py", "import lredit.engine.frontends.editor",
                                   "engine rooms"),
}


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (dev extra)")
@pytest.mark.parametrize("case", sorted(BREAKS))
def test_breaking_a_layer_fails_lint_imports(wheel_tree, tmp_path, case):
    module, line, contract = BREAKS[case]
    tree = tmp_path / "site"
    shutil.copytree(wheel_tree / "lredit", tree / "lredit")
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}  # a broken layer\n")
    done = _lint(tree, tmp_path)
    assert done.returncode != 0, done.stdout[-2000:]
    assert "BROKEN" in done.stdout and contract in done.stdout, done.stdout[-3000:]


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (dev extra)")
def test_the_documented_lint_command_passes_on_this_install():
    """`python tools/lint_imports.py` (README, Develop) gives CI's verdict on whatever install
    runs the tests, editable included: all contracts kept."""
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "lint_imports.py")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "0 broken" in done.stdout and "engine rooms" in done.stdout, done.stdout[-3000:]


def test_no_manifest_dict_lookups_outside_the_manifest_module():
    """The manifest is parsed once (lredit.manifest); engine and bench use its attributes."""
    hits = [f"{path.relative_to(ROOT)}:{n}" for folder in ("engine", "bench") for path in (ROOT / folder).rglob("*.py")
            for n, text in enumerate(path.read_text().splitlines(), 1) if 'manifest["' in text]
    assert not hits, hits
