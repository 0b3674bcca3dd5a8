"""Graph output names live in lredit.graphs (the runtime cannot import export): every spec
declares exactly those names, in that order."""

from lredit.export.specs import SPECS
from lredit.graphs import ALL_GRAPHS, GRAPH_OUTPUTS


def test_every_spec_declares_the_shared_output_names():
    assert sorted(GRAPH_OUTPUTS) == sorted(ALL_GRAPHS) == sorted(SPECS)
    for name, spec in SPECS.items():
        assert tuple(t.name for t in spec.outputs) == GRAPH_OUTPUTS[name], name
