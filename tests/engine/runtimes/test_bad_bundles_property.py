"""Issue #24, property: a tiny bundle's manifest with one randomly chosen value replaced by a
random JSON value is either opened or refused with an LreditError: the typed manifest, its
tables and geometry, the assets, and each graph's signature against the real ONNX graphs."""

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lredit.engine.runtimes.bundle_loader import bundle_assets, bundle_config, check_bundle_tables, check_signature
from lredit.errors import LreditError
from lredit.manifest import read_manifest

JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**66), 2**66), st.floats(allow_nan=True), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)


def _paths(node, prefix=()):
    """Every place in the manifest a value sits at (skipping the long alphas list's items)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list) and len(node) < 50:
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


def _replaced(node, path, value):
    if not path:
        return value
    node = json.loads(json.dumps(node))
    parent = node
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return node


@pytest.fixture(scope="module")
def signatures(tiny_bundle):
    """Each graph's (name, dtype, shape) inputs and outputs as ONNX Runtime reports them."""
    from lredit.engine.runtimes.ort_runtime import _DTYPE_NAMES, OrtSession

    manifest = read_manifest(tiny_bundle)

    def described(metas):
        return [(m.name, _DTYPE_NAMES.get(m.type, m.type), list(m.shape)) for m in metas]

    out = {}
    for name, entry in manifest.graphs.items():
        session = OrtSession(manifest.path(entry.ort_graph)).session
        out[name] = (described(session.get_inputs()), described(session.get_outputs()))
    return out


@pytest.fixture(scope="module")
def bundle_copy(tiny_bundle, tmp_path_factory):
    bundle = tmp_path_factory.mktemp("property") / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    return bundle, json.loads((bundle / "manifest.json").read_text())


def test_random_manifest_damage_is_an_lredit_error_or_harmless(bundle_copy, signatures):
    bundle, original = bundle_copy
    places = list(_paths(original))

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(places), JSON)
    def check(path, value):
        (bundle / "manifest.json").write_text(json.dumps(_replaced(original, path, value)))
        try:
            manifest = read_manifest(bundle)
            check_bundle_tables(manifest)
            bundle_config(manifest)
            bundle_assets(manifest, roi_pool=None, verify="stamp")
            for name, entry in manifest.graphs.items():
                if name in signatures:
                    check_signature(entry, *signatures[name])
        except LreditError:
            pass

    check()
