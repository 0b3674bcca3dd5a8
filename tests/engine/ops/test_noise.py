"""The engine's noise (engine/noise.py): Philox4x32-10 + Box-Muller, pinned to the bit."""

from pathlib import Path

import numpy as np
import pytest

from lredit.engine.ops import noise
from lredit.engine.ops.noise import initial_noise, philox4x32

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "noise_golden.txt"


@pytest.mark.parametrize(
    "counter, key, want",
    [  # Random123's known-answer vectors (kat_vectors, philox4x32_10)
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0), (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ],
)
def test_philox_known_answers(counter, key, want):
    assert tuple(philox4x32(key, np.array([counter], dtype=np.uint32))[0].tolist()) == want


def test_first_values_pinned():
    got = initial_noise(0, 0, 0, (8,))
    want = [0.991137683391571, -0.9246625900268555, -0.6176089644432068, -0.48206859827041626,
            -0.15363822877407074, 0.18082590401172638, 0.8317351341247559, 0.19743971526622772]
    assert got.dtype == np.float32 and got.tolist() == want
    want = [[1.0675901174545288, -0.4253441393375397], [-2.3679730892181396, -0.2314968854188919]]
    assert initial_noise(0, 1, 0, (2, 2)).tolist() == want


def test_golden_file_bit_exact():
    """The file test_philox.cpp checks the C++ implementation against."""
    cases = [line.split() for line in GOLDEN.read_text().splitlines() if line and not line.startswith("#")]
    assert len(cases) >= 6
    for seed, anchor, size, *bits in cases:
        got = initial_noise(int(seed), int(anchor), int(size), (len(bits),)).view(np.uint32)
        assert got.tolist() == [int(b, 16) for b in bits], (seed, anchor, size)


def test_c_order_prefix_and_keys():
    flat = initial_noise(3, 2, 1, (4 * 8 * 8,))
    assert np.array_equal(initial_noise(3, 2, 1, (4, 8, 8)).ravel(), flat)
    assert np.array_equal(initial_noise(3, 2, 1, (5,)), flat[:5])
    others = [initial_noise(*key, (256,)) for key in [(4, 2, 1), (3, 3, 1), (3, 2, 0), (3 + 2**32, 2, 1)]]
    for other in others:
        assert np.count_nonzero(other == flat) < 3
        assert abs(np.corrcoef(other, flat)[0, 1]) < 0.25


def test_standard_normal_statistics():
    z = initial_noise(11, 0, 0, (1_000_000,)).astype(np.float64)
    assert abs(z.mean()) < 5e-3 and abs(z.std() - 1) < 5e-3
    assert abs((z**3).mean()) < 2e-2 and abs((z**4).mean() - 3) < 3e-2
    assert np.isfinite(z).all() and np.abs(z).max() < 6.7  # sqrt(-2 ln 2**-33)
    assert abs((np.abs(z) < 1).mean() - 0.682689) < 2e-3


def test_transcendental_parts_match_libm():
    x = np.random.default_rng(0).integers(0, 2**32, size=200_000, dtype=np.uint64)
    x = np.concatenate([x, np.array([0, 1, 2**30 - 1, 2**30, 2**31, 3 * 2**30, 2**32 - 1], dtype=np.uint64)])
    ref = np.log((2 * x + 1).astype(np.float64) / 2**33)
    assert np.max(np.abs(noise._ln_unit(x) - ref) / np.abs(ref)) < 2e-15
    cos, sin = noise._cos_sin_turn(x)
    angle = 2 * np.pi * x.astype(np.float64) / 2**32
    assert np.max(np.abs(cos - np.cos(angle))) < 4e-15 and np.max(np.abs(sin - np.sin(angle))) < 4e-15


@pytest.mark.parametrize(
    "args, message",
    [((-1, 0, 0), "noise seed -1 is outside"), ((2**64, 0, 0), "noise seed"), ((0, -1, 0), "noise anchor index -1"),
     ((0, 0, 2**32), "noise size index 4294967296")],
)
def test_bad_keys(args, message):
    with pytest.raises(ValueError, match=message):
        initial_noise(*args, (4,))
