"""Issue #24, property: lr-edit's argument parser and its validator (check_run) fed randomised
values, good and bad, let only LreditError subclasses escape (no IndexError, TypeError, ...)."""

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lredit.engine.frontends.cli import check_run, parse
from lredit.errors import LreditError

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "table.png"
OUT = Path(os.environ.get("TMPDIR", "/tmp")) / "lredit-property-out-never-created"

# What argv can hold: any text without NUL, bytes that were not UTF-8 as lone surrogates.
ARG_TEXT = st.text(st.one_of(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                             st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)), max_size=12)
NUMBER = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0", "1", "2", "999", "1000", "1001", "-1", str(2**64), str(2**64 - 1), "nan", "inf", "-inf", "1e400",
                     "0.5", "", " ", "3,4", "1,2,3", "0,0", "-4,6"]),
    ARG_TEXT,
)
VALUED = ["--steps", "--seed", "--anchors", "--guidance", "--working-size", "--max-unet-batch", "--anchor-spacing",
          "--half-sizes", "--prune-fractions", "--scheduler", "--regions", "--rgn-sampling", "--compat", "--device",
          "--backend", "--source-caption", "--dump-graph-io", "--save-rgn", "--models"]
SWITCHES = ["--overwrite", "--no-prune", "--paste-back", "--verify", "--cpu-fallback", "--no-progress"]
NAMED = {"--device": st.sampled_from(["cpu", "cuda", "cuda:0", "cuda:7", "gpu", "CPU", "cuda:-1", "cuda:"]),
         "--scheduler": st.sampled_from(["model", "ddim", "euler", "dpmpp_2m", "pndm", "lms"]),
         "--regions": st.sampled_from(["rgn", "search", "learn", "all"]),
         "--backend": st.sampled_from(["torch", "ort", "trt", "tf"]),
         "--models": st.sampled_from(["tiny", "full-random", "/no/such/models", ""])}


@st.composite
def argvs(draw):
    argv = [str(EXAMPLE), draw(st.one_of(st.just("a bowl of strawberries"), ARG_TEXT)), "--out", str(OUT)]
    for flag in draw(st.lists(st.sampled_from(VALUED + SWITCHES), max_size=6, unique=True)):
        if flag in SWITCHES:
            argv.append(flag)
        elif flag in ("--dump-graph-io", "--save-rgn"):
            argv += [flag, str(draw(st.sampled_from([EXAMPLE, EXAMPLE.parent, OUT / "x", Path("/proc/version")])))]
        else:
            argv += [flag, draw(NAMED.get(flag, NUMBER))]
    return argv


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argvs())
def test_only_lredit_errors_escape_the_parser_and_validator(argv):
    try:
        options, config = parse(argv)
        check_run(options, config)
    except LreditError as exc:
        assert str(exc) and "\n" not in str(exc).strip() or "\n" in "".join(argv)
    assert not OUT.exists()  # validation writes nothing
