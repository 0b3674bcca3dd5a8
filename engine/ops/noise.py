"""The engine's initial noise: one fixed draw per (seed, anchor, size), the same to the bit in
numpy and C++ (`cpp/src/philox.cpp`).

Keyed by the anchor and the box size it is inpainted with, so a pair's noise does not depend on
which other pairs share the batch (region search, batched requests) or on K.

Definition:

1. Philox4x32-10 (Salmon et al., SC'11; Random123's constants and round function), key
   ``(seed mod 2**32, seed // 2**32)``, counter of block ``b``:
   ``(b mod 2**32, b // 2**32, anchor, size)``. Block ``b`` gives four 32-bit words ``w0..w3``.
2. Box-Muller on each word pair ``(x, y)`` = ``(w0, w1)`` and ``(w2, w3)``, in float64 with only
   IEEE-754 +, -, *, / and sqrt (each rounded to nearest; no fused multiply-add), so that every
   language computes the same bits:
   - ``ln_u = ln((2x + 1) / 2**33)`` (``u`` in (0, 1), never 0): frexp splits the exact double
     ``2x + 1 = f * 2**e``, ``f`` in [1/2, 1); when ``f < SQRT1_2 = 0x1.6a09e667f3bcdp-1``,
     ``m = 2 f`` and ``e = e - 1``, else ``m = f``. ``s = (m - 1) / (m + 1)``, ``s2 = s * s``;
     ``p = 1/27``, then ``p = 1/(2j+1) + s2 * p`` for j = 12 .. 0 (so ``p`` is
     ``1 + s^2/3 + ... + s^26/27``); ``ln_m = (2 s) * p``; ``ln_u = (e - 33) * LN2 + ln_m`` with
     ``LN2 = 0x1.62e42fefa39efp-1``. Every ``1/k`` is the correctly rounded double quotient.
   - ``r = sqrt(-2 ln_u)``.
   - angle ``2 pi y / 2**32``: quadrant ``q = y >> 30``, ``t = (y mod 2**30) * 0x1.921fb54442d18p-30``
     (in [0, pi/2)), ``t2 = t * t``; ``S = C = 1``, then for i = 24, 22, .., 2:
     ``S = 1 - (t2 / (i*(i+1))) * S`` and ``C = 1 - (t2 / ((i-1)*i)) * C``; ``sin t = t * S``,
     ``cos t = C`` (Taylor series to t^25/25! and t^24/24!); then by quadrant
     ``(cos, sin)`` of the full angle = (C, sin t), (-sin t, C), (-C, -sin t), (sin t, -C).
   - ``z0 = float32(r cos)``, ``z1 = float32(r sin)`` (round to nearest even).
3. Element ``i`` of the C-ordered output is normal ``i``: block ``i // 4``, normal ``i % 4`` in
   the order ``z0(w0, w1), z1(w0, w1), z0(w2, w3), z1(w2, w3)``.

``seed`` is any integer in [0, 2**64); ``anchor`` and ``size`` are in [0, 2**32).
"""

from __future__ import annotations

import numpy as np

PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
PHILOX_ROUNDS = 10
LN2 = float.fromhex("0x1.62e42fefa39efp-1")
SQRT1_2 = float.fromhex("0x1.6a09e667f3bcdp-1")
HALF_PI_2M30 = float.fromhex("0x1.921fb54442d18p-30")  # (pi/2) / 2**30, exact scaling of double pi/2
_LOG_TERMS = 13  # the atanh series to s^26/27 (|s| <= 0.1716: truncation below 2**-70)
_TRIG_TERMS = 12  # sin to t^25/25!, cos to t^24/24!: truncation below 2**-70 for t < pi/2
_MASK32 = np.uint64(0xFFFFFFFF)


def initial_noise(seed: int, anchor: int, size: int, shape: tuple[int, ...]) -> np.ndarray:
    """float32 standard normal of `shape` for candidate (anchor, size) of an edit seeded `seed`."""
    count = int(np.prod(shape, dtype=np.int64))
    blocks = philox4x32(_key(seed), _counters((count + 3) // 4, anchor, size))
    return box_muller(blocks).reshape(-1)[:count].reshape(shape)


def philox4x32(key: tuple[int, int], counters: np.ndarray) -> np.ndarray:
    """Philox4x32-10 of uint32 counters [n, 4] under `key` (two 32-bit words) -> uint32 [n, 4]."""
    c = counters.astype(np.uint64).T.copy()
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    m0, m1 = np.uint64(PHILOX_M[0]), np.uint64(PHILOX_M[1])
    c0, c1, c2, c3 = c
    shift = np.uint64(32)
    for r in range(PHILOX_ROUNDS):
        if r:
            k0 = (k0 + np.uint64(PHILOX_W[0])) & _MASK32
            k1 = (k1 + np.uint64(PHILOX_W[1])) & _MASK32
        p0 = m0 * c0  # 32 x 32 -> 64 bits: exact in uint64
        p1 = m1 * c2
        c0, c1, c2, c3 = (p1 >> shift) ^ c1 ^ k0, p1 & _MASK32, (p0 >> shift) ^ c3 ^ k1, p0 & _MASK32
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


def box_muller(words: np.ndarray) -> np.ndarray:
    """uint32 words [n, 4] -> float32 normals [n, 4] (pairs (w0, w1), (w2, w3)), as defined above."""
    x = words[:, 0::2].astype(np.uint64)
    y = words[:, 1::2].astype(np.uint64)
    radius = np.sqrt(-2.0 * _ln_unit(x))
    cos, sin = _cos_sin_turn(y)
    out = np.empty(words.shape, dtype=np.float32)
    out[:, 0::2] = (radius * cos).astype(np.float32)
    out[:, 1::2] = (radius * sin).astype(np.float32)
    return out


def _ln_unit(x: np.ndarray) -> np.ndarray:
    """ln((2x + 1) / 2**33) for uint32 values x, in float64 with basic operations only."""
    mant, exp = np.frexp((x * np.uint64(2) + np.uint64(1)).astype(np.float64))  # exact
    low = mant < SQRT1_2
    m = np.where(low, mant * 2.0, mant)
    e = np.where(low, exp - 1, exp).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = np.full_like(s, 1.0 / (2 * _LOG_TERMS + 1))
    for j in range(_LOG_TERMS - 1, -1, -1):  # p = 1/(2j+1) + s2 * p, in place
        np.multiply(s2, p, out=p)
        np.add(1.0 / (2 * j + 1), p, out=p)
    ln_m = (2.0 * s) * p
    return (e - 33.0) * LN2 + ln_m


def _cos_sin_turn(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of 2 pi y / 2**32 for uint32 values y, in float64 with basic operations only."""
    quadrant = (y >> np.uint64(30)).astype(np.int64)
    t = (y & np.uint64(0x3FFFFFFF)).astype(np.float64) * HALF_PI_2M30
    t2 = t * t
    sin = np.ones_like(t)
    cos = np.ones_like(t)
    factor = np.empty_like(t)
    for i in range(2 * _TRIG_TERMS, 0, -2):  # sin = 1 - (t2 / (i(i+1))) * sin; cos likewise with (i-1)i
        np.divide(t2, float(i * (i + 1)), out=factor)
        np.multiply(factor, sin, out=sin)
        np.subtract(1.0, sin, out=sin)
        np.divide(t2, float((i - 1) * i), out=factor)
        np.multiply(factor, cos, out=cos)
        np.subtract(1.0, cos, out=cos)
    sin = t * sin
    c = np.choose(quadrant, [cos, -sin, -cos, sin])
    s = np.choose(quadrant, [sin, cos, -sin, -cos])
    return c, s


def _key(seed: int) -> tuple[int, int]:
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"noise seed {seed} is outside [0, 2**64)")
    return seed & 0xFFFFFFFF, seed >> 32


def _counters(n: int, anchor: int, size: int) -> np.ndarray:
    for name, value in (("anchor", anchor), ("size", size)):
        if not 0 <= int(value) < 2**32:
            raise ValueError(f"noise {name} index {value} is outside [0, 2**32)")
    b = np.arange(n, dtype=np.uint64)
    return np.stack(
        [b & _MASK32, b >> np.uint64(32), np.full(n, anchor, np.uint64), np.full(n, size, np.uint64)], axis=1
    ).astype(np.uint32)
