"""Soundness of the certified bounds: ``lower <= L <= upper`` against exact oracles.

The oracles here are independent of lipmip's own arithmetic:

* ``ExactNet`` re-evaluates a network in exact rational arithmetic
  (``fractions.Fraction`` of the float64 weights, which *are* the network).
* ``exact_pieces`` partitions a 1-D interval or a 2-D convex polygon of the
  free input coordinates into the linear pieces of the network, splitting
  layer by layer at every ReLU's zero set, all in rationals. The true local
  Lipschitz constant is the largest local value over pieces of positive
  measure, and the comparisons with lipmip's numbers are made exactly
  (squared where a 2-norm would need a square root).
* For inputs of higher dimension, a dense random set of points gives local
  values that can only under-estimate ``L`` (checked against ``upper``), and
  every witness pair is re-checked exactly (its difference quotient proves
  ``lower <= L`` by itself).
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction as Fr

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nets import random_net

import lipmip
from lipmip import Ball, Box, Layer, LipschitzBound, Network, Query

INF = math.inf
NORMS = [1.0, 2.0, INF]
METHODS = ["sample", "naive", "interval", "auto"]
ZERO = Fr(0)

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# =============================================================================
# exact rational re-implementation of the network
# =============================================================================
class ExactNet:
    """The network with every weight as an exact rational."""

    def __init__(self, net: Network):
        self.net = net
        self.layers = [
            (
                [[Fr(float(w)) for w in row] for row in layer.W],
                [Fr(float(v)) for v in layer.b],
                layer.activation.name,
            )
            for layer in net.layers
        ]

    def forward(self, x) -> list[Fr]:
        h = [Fr(float(v)) for v in np.asarray(x, dtype=np.float64).reshape(-1)]
        for W, b, act in self.layers:
            z = [sum((w * v for w, v in zip(row, h)), ZERO) + bb for row, bb in zip(W, b)]
            h = [v if v > 0 else ZERO for v in z] if act == "relu" else z
        return h


def _fr_vec(v) -> list[Fr]:
    return [Fr(float(x)) for x in np.asarray(v, dtype=np.float64).reshape(-1)]


def exact_norm_cmp(v: list[Fr], p: float, bound: Fr) -> int:
    """Sign of ``‖v‖_p - bound`` (bound >= 0), exactly."""
    if p == 1.0:
        val = sum((abs(x) for x in v), ZERO)
    elif p == INF:
        val = max((abs(x) for x in v), default=ZERO)
    else:
        sq = sum((x * x for x in v), ZERO)
        b2 = bound * bound
        return (sq > b2) - (sq < b2)
    return (val > bound) - (val < bound)


def exact_region_contains(region, x) -> bool:
    xf = _fr_vec(x)
    if isinstance(region, Box):
        return all(Fr(float(lo)) <= v <= Fr(float(hi)) for v, lo, hi in zip(xf, region.lo, region.hi))
    diff = [v - c for v, c in zip(xf, _fr_vec(region.center))]
    return exact_norm_cmp(diff, region.p, Fr(region.radius)) <= 0


def check_witness_exactly(net: Network, region, query: Query, result: LipschitzBound) -> None:
    """The witness pair lies in the region and its difference quotient, in exact
    arithmetic, is at least ``result.lower`` (so the lower bound is proven)."""
    if result.lower is None:
        return
    assert result.lower >= 0.0
    w = result.witness
    if w is None:
        assert result.lower == 0.0, "a positive lower bound needs a witness"
        return
    assert result.lower == w.value
    a, b = np.asarray(w.a, dtype=np.float64), np.asarray(w.b, dtype=np.float64)
    assert a.shape == b.shape == (net.input_dim,)
    assert bool(region.contains(a)) and bool(region.contains(b)), "witness point outside the region (float check)"
    assert exact_region_contains(region, a) and exact_region_contains(region, b), "witness outside the region (exact)"
    ex = ExactNet(net)
    ya, yb = ex.forward(a), ex.forward(b)
    dx = [p - q for p, q in zip(_fr_vec(a), _fr_vec(b))]
    dy = [p - q for p, q in zip(ya, yb)]
    if query.c is not None:
        c = _fr_vec(query.c)
        num = [sum((ci * d for ci, d in zip(c, dy)), ZERO)]
        out_p = 1.0  # |.| of a scalar, any p
    else:
        num = dy
        out_p = query.output_norm
    value = Fr(float(w.value))
    # ‖dy‖_β >= value * ‖dx‖_α, exactly. Both sides nonnegative; compare via the
    # exact norm of one side against an exact lower bound on the other.
    if query.input_norm == 2.0 or out_p == 2.0:
        lhs2 = _norm_sq_or_pow(num, out_p)
        rhs2 = _norm_sq_or_pow(dx, query.input_norm)
        assert lhs2 >= value * value * rhs2, f"witness value {w.value!r} exceeds the exact difference quotient"
    else:
        lhs = _norm_exact(num, out_p)
        rhs = _norm_exact(dx, query.input_norm)
        assert lhs >= value * rhs, (
            f"witness value {w.value!r} exceeds the exact difference quotient {float(lhs / rhs)!r}"
        )
    # (no float re-check: lipmip may evaluate a pair in exact rationals, above what float64 rounding shows)


def _norm_exact(v: list[Fr], p: float) -> Fr:
    assert p in (1.0, INF)
    if p == 1.0:
        return sum((abs(x) for x in v), ZERO)
    return max((abs(x) for x in v), default=ZERO)


def _norm_sq_or_pow(v: list[Fr], p: float) -> Fr:
    """``‖v‖_p ** 2`` exactly for p in {1, 2, inf}."""
    if p == 2.0:
        return sum((x * x for x in v), ZERO)
    n = _norm_exact(v, p)
    return n * n


# =============================================================================
# exact piecewise-linear partition over 1 or 2 free coordinates
# =============================================================================
def _split_interval(dom, a, c):
    lo, hi = dom
    vlo, vhi = a[0] * lo + c, a[0] * hi + c
    if vlo >= 0 and vhi >= 0:
        return dom, None
    if vlo <= 0 and vhi <= 0:
        return None, dom
    t = -c / a[0]
    return ((t, hi), (lo, t)) if vhi > 0 else ((lo, t), (t, hi))


def _clip(poly, vals, keep_positive):
    out = []
    n = len(poly)
    for i in range(n):
        p, vp = poly[i], vals[i]
        q, vq = poly[(i + 1) % n], vals[(i + 1) % n]
        inside_p = vp >= 0 if keep_positive else vp <= 0
        if inside_p:
            out.append(p)
        if (vp > 0 and vq < 0) or (vp < 0 and vq > 0):
            s = vp / (vp - vq)
            out.append((p[0] + s * (q[0] - p[0]), p[1] + s * (q[1] - p[1])))
    return out


def _split_polygon(poly, a, c):
    vals = [a[0] * x + a[1] * y + c for x, y in poly]
    if all(v >= 0 for v in vals):
        return poly, None
    if all(v <= 0 for v in vals):
        return None, poly
    # the line crosses the interior of the (convex, positive-area) polygon
    return _clip(poly, vals, True), _clip(poly, vals, False)


def _polygon_area2(poly) -> Fr:
    s = ZERO
    for i in range(len(poly)):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % len(poly)]
        s += x0 * y1 - x1 * y0
    return s


def _region_domains(region, free, outer: bool):
    """The region restricted to its free coordinates, as an exact interval or
    convex polygon (for a 2-D Euclidean ball: an inscribed polygon when
    ``outer`` is False, a circumscribed one when True)."""
    k = len(free)
    if isinstance(region, Box):
        lo = [Fr(float(region.lo[i])) for i in free]
        hi = [Fr(float(region.hi[i])) for i in free]
        if k == 1:
            return (lo[0], hi[0])
        return [(lo[0], lo[1]), (hi[0], lo[1]), (hi[0], hi[1]), (lo[0], hi[1])]
    c = [Fr(float(region.center[i])) for i in free]
    r = Fr(region.radius)
    if k == 1:
        return (c[0] - r, c[0] + r)
    if region.p == INF:
        return [(c[0] - r, c[1] - r), (c[0] + r, c[1] - r), (c[0] + r, c[1] + r), (c[0] - r, c[1] + r)]
    if region.p == 1.0:
        return [(c[0] + r, c[1]), (c[0], c[1] + r), (c[0] - r, c[1]), (c[0], c[1] - r)]
    n = 24
    poly = []
    for i in range(n):
        th = 2 * math.pi * i / n
        if outer:
            rad = Fr(float(region.radius / math.cos(math.pi / n) * (1 + 1e-9)))
        else:
            rad = Fr(float(region.radius * (1 - 1e-9)))
        poly.append((c[0] + rad * Fr(math.cos(th)), c[1] + rad * Fr(math.sin(th))))
    # verify the inscribed/circumscribed claim exactly
    for i in range(n):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % n]
        if outer:
            # the line through the edge stays at distance >= r from the centre
            cross = (x1 - x0) * (c[1] - y0) - (y1 - y0) * (c[0] - x0)
            assert cross * cross >= r * r * ((x1 - x0) ** 2 + (y1 - y0) ** 2)
        else:
            assert (x0 - c[0]) ** 2 + (y0 - c[1]) ** 2 <= r * r
    return poly


def exact_pieces(net: Network, region, outer: bool = True) -> list[list[list[Fr]]]:
    """The Jacobians (w.r.t. the free coordinates, m x k) of every linear piece
    of positive measure of the network over ``region``; k = number of free
    coordinates, at most 2."""
    if isinstance(region, Box):
        free = [i for i in range(region.dim) if region.hi[i] > region.lo[i]]
        base = _fr_vec(region.lo)
    else:
        free = list(range(region.dim))
        base = _fr_vec(region.center)
    k = len(free)
    assert k <= 2, "exact oracle only for at most 2 free coordinates"
    ex = ExactNet(net)
    if k == 0:
        return [[[] for _ in range(net.output_dim)]]
    # h = G u + h0 with u the free coordinates themselves
    G = [[Fr(1) if i == free[j] else ZERO for j in range(k)] for i in range(net.input_dim)]
    h0 = [ZERO if i in free else base[i] for i in range(net.input_dim)]
    split = _split_interval if k == 1 else _split_polygon
    cells = [(_region_domains(region, free, outer), G, h0)]
    for W, b, act in ex.layers:
        new_cells = []
        for dom, G, h0 in cells:
            Z = [[sum((w * g[j] for w, g in zip(row, G)), ZERO) for j in range(k)] for row in W]
            z0 = [sum((w * v for w, v in zip(row, h0)), ZERO) + bb for row, bb in zip(W, b)]
            if act != "relu":
                new_cells.append((dom, Z, z0))
                continue
            pieces = [(dom, ())]
            for i in range(len(W)):
                nxt = []
                for d, mask in pieces:
                    pos, neg = split(d, Z[i], z0[i])
                    if pos is not None:
                        nxt.append((pos, mask + (True,)))
                    if neg is not None:
                        nxt.append((neg, mask + (False,)))
                pieces = nxt
            for d, mask in pieces:
                new_cells.append(
                    (
                        d,
                        [Z[i] if on else [ZERO] * k for i, on in enumerate(mask)],
                        [z0[i] if on else ZERO for i, on in enumerate(mask)],
                    )
                )
        cells = new_cells
    for dom, _, _ in cells:  # every piece has positive measure
        if k == 1:
            assert dom[1] > dom[0]
        else:
            assert _polygon_area2(dom) != 0
    return [G for _, G, _ in cells]


def local_cmp(query: Query, J: list[list[Fr]], v: Fr) -> int:
    """Sign of ``local_value(J) - v`` exactly (v >= 0)."""
    k = len(J[0]) if J else 0
    a = query.input_norm
    if query.c is not None:
        c = _fr_vec(query.c)
        g = [sum((ci * J[i][j] for i, ci in enumerate(c)), ZERO) for j in range(k)]
        dual = {1.0: INF, 2.0: 2.0, INF: 1.0}[a]
        return exact_norm_cmp(g, dual, v)
    if k == 0:
        return (ZERO > v) - (ZERO < v)
    if a == 1.0:
        val = max(sum((abs(row[j]) for row in J), ZERO) for j in range(k))
        return (val > v) - (val < v)
    if a == INF:
        val = max(sum((abs(x) for x in row), ZERO) for row in J)
        return (val > v) - (val < v)
    M = [[sum((row[i] * row[j] for row in J), ZERO) for j in range(k)] for i in range(k)]
    v2 = v * v
    if k == 1:
        return (M[0][0] > v2) - (M[0][0] < v2)
    m11, m12, m22 = v2 - M[0][0], -M[0][1], v2 - M[1][1]
    det = m11 * m22 - m12 * m12
    if m11 > 0 and det > 0:  # v^2 I - JᵀJ positive definite: σ_max < v
        return -1
    if m11 >= 0 and m22 >= 0 and det >= 0:  # PSD but singular: σ_max == v
        return 0
    return 1


def local_float(query: Query, J: list[list[Fr]]) -> float:
    if not J or not J[0]:
        return 0.0  # no free coordinate: a single point, constant 0
    Jf = np.array([[float(x) for x in row] for row in J], dtype=np.float64).reshape(len(J), -1)
    return float(query.local_value(Jf))


def assert_sound(net: Network, region, query: Query, result: LipschitzBound) -> None:
    """``lower <= L <= upper`` with L the exact constant (at most 2 free coordinates)."""
    inner = exact_pieces(net, region, outer=False)
    is_disc = isinstance(region, Ball) and region.p == 2.0 and region.dim == 2
    outer = exact_pieces(net, region, outer=True) if is_disc else inner
    exact = max(local_float(query, J) for J in inner)
    if result.upper is not None:
        up = Fr(float(result.upper))
        bad = [J for J in inner if local_cmp(query, J, up) > 0]
        assert not bad, f"UNSOUND upper {result.upper!r} < exact L ~ {exact!r} ({result.method})"
    if result.lower is not None and result.lower > 0:
        lo = Fr(float(result.lower))
        assert any(local_cmp(query, J, lo) >= 0 for J in outer), (
            f"UNSOUND lower {result.lower!r} > exact L ~ {exact!r} ({result.method})"
        )
    check_witness_exactly(net, region, query, result)


def exact_constant(net: Network, region, query: Query) -> float:
    return max(local_float(query, J) for J in exact_pieces(net, region))


# =============================================================================
# independent float helpers
# =============================================================================
def np_jacobians(net: Network, X: np.ndarray) -> np.ndarray:
    """Jacobians at the rows of X, written independently of Network.jacobian."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    J = np.repeat(np.eye(net.input_dim)[None], X.shape[0], axis=0)
    h = X
    for W, b, act in [(l.W, l.b, l.activation.name) for l in net.layers]:
        z = h @ W.T + b
        J = np.matmul(W[None], J)
        if act == "relu":
            J = J * (z > 0)[:, :, None]
            h = np.maximum(z, 0)
        else:
            h = z
    return J


def np_local_values(query: Query, J: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
    if free is not None:
        J = J * free[None, None, :]
    if query.c is not None:
        g = np.einsum("m,bmn->bn", query.c, J)
        dual = {1.0: INF, 2.0: 2.0, INF: 1.0}[query.input_norm]
        return np.linalg.norm(g, ord=dual, axis=1)
    p = query.input_norm
    if p == 1.0:
        return np.abs(J).sum(axis=1).max(axis=1)
    if p == INF:
        return np.abs(J).sum(axis=2).max(axis=1)
    return np.linalg.norm(J, ord=2, axis=(1, 2))


def all_queries(m: int, rng) -> list[Query]:
    qs = []
    for p in NORMS:
        qs.append(Query.scalar(rng.normal(size=m), p))
        qs.append(Query.output(m - 1, m, p))
        if m >= 2:
            qs.append(Query.margin(0, 1, m, p))
        qs.append(Query.vector(p))
    return qs


def run_all(net, region, query):
    results = {m: lipmip.lipschitz(net, region, query, method=m) for m in METHODS}
    assert results["sample"].upper is None and results["sample"].lower is not None
    assert results["naive"].lower is None and results["naive"].upper is not None
    assert results["interval"].lower is None and results["interval"].upper is not None
    auto = results["auto"]
    # auto starts from the sampled and cheap bounds and can only tighten them
    assert auto.lower >= results["sample"].lower
    assert auto.upper <= min(results["naive"].upper, results["interval"].upper)
    for r in results.values():
        if r.lower is not None and r.upper is not None:
            assert 0.0 <= r.lower <= r.upper
    return results


# =============================================================================
# oracle self-checks (the oracle must be right before it judges anything)
# =============================================================================
def test_oracle_1d_matches_hand_computed_hat_function():
    # f(t) = relu(t) - 2 relu(t - 1) on [-1, 3]: slopes 0, 1, -1 -> L = 1
    net = Network.from_params(
        [(np.array([[1.0], [1.0]]), np.array([0.0, -1.0])), (np.array([[1.0, -2.0]]), np.zeros(1))]
    )
    q = Query.output(0, 1, INF)
    assert exact_constant(net, Box(-1, 3), q) == pytest.approx(1.0, abs=0)
    assert exact_constant(net, Box(-1, -0.5), q) == 0.0
    # |f(t)| with 3 pieces: slope 3 on a tiny interval only
    net2 = Network.from_params(
        [(np.array([[3.0], [3.0]]), np.array([0.0, -0.003])), (np.array([[1.0, -1.0]]), np.zeros(1))]
    )
    assert exact_constant(net2, Box(-1, 1), q) == 3.0


def test_oracle_2d_matches_hand_computed():
    # f(x, y) = relu(x) + 2 relu(y): gradients (0,0), (1,0), (0,2), (1,2)
    net = Network.from_params([(np.eye(2), np.zeros(2)), (np.array([[1.0, 2.0]]), np.zeros(1))])
    box = Box([-1, -1], [1, 1])
    assert len(exact_pieces(net, box)) == 4
    assert exact_constant(net, box, Query.output(0, 1, INF)) == 3.0  # ‖(1,2)‖_1
    assert exact_constant(net, box, Query.output(0, 1, 1.0)) == 2.0  # ‖(1,2)‖_inf
    assert exact_constant(net, box, Query.output(0, 1, 2.0)) == pytest.approx(math.sqrt(5), rel=1e-15)
    assert exact_constant(net, Box([-1, -1], [1, -0.5]), Query.output(0, 1, INF)) == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_oracle_agrees_with_dense_grid(seed):
    rng = np.random.default_rng(100 + seed)
    net = random_net(rng, [2, 5, 4, 2])
    box = Box([-1.0, -0.5], [0.7, 1.2])
    X = box.sample(20000, rng)
    for q in all_queries(2, rng):
        exact = exact_constant(net, box, q)
        grid = np_local_values(q, np_jacobians(net, X)).max()
        assert grid <= exact * (1 + 1e-12) + 1e-15
        assert grid >= 0.9 * exact  # small nets: 20000 points find the steep pieces


@pytest.mark.parametrize("seed", range(4))
def test_oracle_1d_agrees_with_fine_grid(seed):
    rng = np.random.default_rng(200 + seed)
    net = random_net(rng, [1, 6, 6, 2])
    box = Box(-2.0, 2.0)
    t = np.linspace(-2, 2, 200001)[:, None]
    for q in all_queries(2, rng):
        exact = exact_constant(net, box, q)
        grid = np_local_values(q, np_jacobians(net, t)).max()
        assert grid <= exact * (1 + 1e-12) + 1e-15
        assert grid >= exact * (1 - 1e-9)


# =============================================================================
# 1-D inputs: exact oracle
# =============================================================================
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("sizes", [[1, 1], [1, 1, 1], [1, 4, 1], [1, 6, 6, 1], [1, 5, 5, 3], [1, 3, 3, 3, 2]])
def test_1d_exact_oracle_all_methods_and_norms(sizes, seed):
    rng = np.random.default_rng(seed * 31 + len(sizes))
    net = random_net(rng, sizes, style=["gauss", "int", "sparse"][seed % 3])
    a = float(rng.normal())
    region = Box(a, a + float(rng.uniform(0.1, 4.0)))
    for q in all_queries(net.output_dim, rng):
        for r in run_all(net, region, q).values():
            assert_sound(net, region, q, r)


def test_1d_norms_agree_on_scalar_queries():
    """In one dimension every input norm gives the same constant, and the
    bounds must respect that single exact number for every norm."""
    rng = np.random.default_rng(7)
    net = random_net(rng, [1, 6, 6, 1])
    region = Box(-1.5, 2.5)
    exact = {p: exact_constant(net, region, Query.output(0, 1, p)) for p in NORMS}
    assert exact[1.0] == exact[2.0] == exact[INF]
    for p in NORMS:
        r = lipmip.lipschitz(net, region, Query.output(0, 1, p))
        assert r.lower <= exact[p] * (1 + 1e-9)
        assert r.upper >= exact[p] * (1 - 1e-9)
        assert_sound(net, region, Query.output(0, 1, p), r)


@pytest.mark.parametrize("p", NORMS)
def test_1d_balls_are_intervals(p):
    rng = np.random.default_rng(11)
    net = random_net(rng, [1, 5, 5, 2])
    ball = Ball([0.3], 1.7, p)
    for q in all_queries(2, rng):
        for r in run_all(net, ball, q).values():
            assert_sound(net, ball, q, r)
        # identical constant to the box [c - r, c + r]
        assert exact_constant(net, ball, q) == exact_constant(net, Box(0.3 - 1.7, 0.3 + 1.7), q)


def test_1d_steep_piece_is_never_overestimated():
    """A narrow very steep piece: the sampled lower bound may miss it but can
    never exceed the exact constant; the upper bound must cover it."""
    W1 = np.array([[1000.0], [1000.0], [1.0]])
    b1 = np.array([0.0, -1.0, 0.0])  # relu(1000 t) - relu(1000 t - 1): slope 1000 on [0, 1e-3]
    W2 = np.array([[1.0, -1.0, 0.5]])
    net = Network.from_params([(W1, b1), (W2, np.zeros(1))])
    region = Box(-1.0, 1.0)
    q = Query.output(0, 1, INF)
    assert exact_constant(net, region, q) == 1000.5
    for r in run_all(net, region, q).values():
        assert_sound(net, region, q, r)


# =============================================================================
# 2-D inputs: exact polygon oracle, plus the dense grid the brief asks for
# =============================================================================
TWO_D_CASES = (
    [([2, 6, 6, 1], s) for s in range(4)] + [([2, 5, 5, 2], s) for s in range(4)] + [([2, 3, 1], 9), ([2, 4, 3], 10)]
)


@pytest.mark.parametrize("sizes,seed", TWO_D_CASES)
def test_2d_exact_oracle_box(sizes, seed):
    rng = np.random.default_rng(1000 + seed + 17 * len(sizes))
    net = random_net(rng, sizes, style=["gauss", "int", "sparse", "gauss"][seed % 4])
    lo = rng.normal(size=2)
    region = Box(lo, lo + rng.uniform(0.2, 2.0, size=2))
    X = region.sample(5000, rng)
    for q in all_queries(net.output_dim, rng):
        results = run_all(net, region, q)
        for r in results.values():
            assert_sound(net, region, q, r)
        # the brief's check: every grid local value is <= L <= upper
        grid = np_local_values(q, np_jacobians(net, X)).max()
        assert results["naive"].upper >= grid * (1 - 1e-12)


@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("seed", range(3))
def test_2d_exact_oracle_balls(p, seed):
    rng = np.random.default_rng(2000 + seed)
    net = random_net(rng, [2, 5, 5, 2], style=["gauss", "int", "sparse"][seed])
    ball = Ball(rng.normal(size=2), float(rng.uniform(0.3, 1.5)), p)
    for q in all_queries(2, rng):
        for r in run_all(net, ball, q).values():
            assert_sound(net, ball, q, r)


def test_region_centre_on_kinks():
    """Integer weights and a box centred exactly on several kinks (every
    ReLU's zero set passes through the centre)."""
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    W2 = np.array([[2.0, -1.0, 1.0, 3.0], [1.0, 1.0, -2.0, 0.0]])
    net = Network.from_params([(W1, np.zeros(4)), (W2, np.zeros(2))])
    for region in (Box([-1, -1], [1, 1]), Ball([0, 0], 1.0, 1), Ball([0, 0], 1.0, 2), Ball([0, 0], 1.0, INF)):
        for q in all_queries(2, np.random.default_rng(5)):
            for r in run_all(net, region, q).values():
                assert_sound(net, region, q, r)


# =============================================================================
# linear networks: closed-form constants, lower must be tight
# =============================================================================
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (3, 1), (4, 5), (2, 2)])
def test_single_identity_layer_closed_form(shape, seed):
    rng = np.random.default_rng(seed)
    m, n = shape
    W = rng.normal(size=(m, n))
    net = Network([Layer(W, rng.normal(size=m), "identity")])
    regions = [
        Box(-np.ones(n), np.ones(n) * 2),
        Ball(rng.normal(size=n), 0.5, 1),
        Ball(rng.normal(size=n), 0.5, 2),
        Ball(rng.normal(size=n), 0.5, INF),
    ]
    for region in regions:
        for p in NORMS:
            dual = {1.0: INF, 2.0: 2.0, INF: 1.0}[p]
            c = rng.normal(size=m)
            cases = [(Query.scalar(c, p), float(np.linalg.norm(c @ W, ord=dual))), (Query.vector(p), _opnorm(W, p))]
            for q, exact in cases:
                r = lipmip.lipschitz(net, region, q)
                assert r.lower <= exact * (1 + 1e-9)
                assert r.lower >= exact * (1 - 1e-9), f"lower {r.lower} not tight on a linear map ({exact})"
                assert r.upper >= exact * (1 - 1e-12)
                assert r.upper <= exact * (1 + 1e-8)  # one layer: the product bound is exact
                check_witness_exactly(net, region, q, r)


def _opnorm(W, p):
    if p == 1.0:
        return float(np.abs(W).sum(axis=0).max())
    if p == INF:
        return float(np.abs(W).sum(axis=1).max())
    return float(np.linalg.norm(W, 2))


@pytest.mark.parametrize("p", NORMS)
def test_relu_network_with_every_neuron_stably_active(p):
    """Positive weights, positive biases and a positive box: every ReLU is on,
    so f is the linear map W3 W2 W1 and the constant is closed-form."""
    rng = np.random.default_rng(3)
    Ws = [rng.uniform(0.1, 1.0, size=s) for s in [(4, 3), (5, 4), (2, 5)]]
    bs = [rng.uniform(0.1, 1.0, size=s[0]) for s in [(4, 3), (5, 4), (2, 5)]]
    net = Network.from_params(list(zip(Ws, bs)), ["relu", "relu", "relu"])
    region = Box([0.5, 1.0, 0.2], [1.5, 2.0, 0.9])
    Z = net.pre_activations(region.sample(500, rng))
    assert all((z > 0).all() for z in Z)
    M = Ws[2] @ Ws[1] @ Ws[0]
    c = np.array([1.0, -0.7])
    dual = {1.0: INF, 2.0: 2.0, INF: 1.0}[p]
    for q, exact in [(Query.scalar(c, p), float(np.linalg.norm(c @ M, ord=dual))), (Query.vector(p), _opnorm(M, p))]:
        r = lipmip.lipschitz(net, region, q)
        assert exact * (1 - 1e-9) <= r.lower <= exact * (1 + 1e-9)
        assert r.upper >= exact
        check_witness_exactly(net, region, q, r)


# =============================================================================
# degenerate boxes (lo == hi on some coordinates)
# =============================================================================
@pytest.mark.parametrize("seed", range(4))
def test_degenerate_box_one_free_coordinate(seed):
    rng = np.random.default_rng(300 + seed)
    net = random_net(rng, [3, 6, 5, 2])
    lo = rng.normal(size=3)
    hi = lo.copy()
    free = seed % 3
    hi[free] += 1.5
    region = Box(lo, hi)
    for q in all_queries(2, rng):
        exact = exact_constant(net, region, q)
        # the restricted function is f along one axis; its constant is the
        # exact 1-D constant of a network whose input is that coordinate
        for r in run_all(net, region, q).values():
            assert_sound(net, region, q, r)
            if r.lower is not None:
                assert r.lower <= exact * (1 + 1e-9)
            if r.upper is not None:
                assert r.upper >= exact * (1 - 1e-9)


def test_degenerate_box_restricted_constant_can_be_far_below_full_one():
    """f(x, y) = 10 y + x: over a box with y fixed the constant is 1 (not 10),
    and the certified lower bound must not exceed 1."""
    net = Network([Layer(np.array([[1.0, 10.0]]), np.zeros(1), "identity")])
    region = Box([0.0, 0.5], [1.0, 0.5])
    for p in NORMS:
        r = lipmip.lipschitz(net, region, Query.output(0, 1, p))
        assert r.lower == pytest.approx(1.0, rel=1e-9)
        assert r.lower <= 1.0
        assert r.upper >= 1.0
        check_witness_exactly(net, region, Query.output(0, 1, p), r)


@pytest.mark.parametrize("seed", range(3))
def test_degenerate_box_two_free_of_four(seed):
    rng = np.random.default_rng(400 + seed)
    net = random_net(rng, [4, 5, 4, 1])
    lo = rng.normal(size=4)
    hi = lo.copy()
    hi[[0, 2]] += [1.0, 0.8]
    region = Box(lo, hi)
    for q in all_queries(1, rng):
        for r in run_all(net, region, q).values():
            assert_sound(net, region, q, r)


def test_fully_degenerate_box_gives_zero_lower():
    rng = np.random.default_rng(0)
    net = random_net(rng, [2, 4, 1])
    region = Box([0.3, -0.2], [0.3, -0.2])
    r = lipmip.lipschitz(net, region, Query.output(0, 1, 2))
    assert r.lower == 0.0
    assert r.upper >= 0.0


# =============================================================================
# ERAN-style output ReLU
# =============================================================================
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_in", [1, 2])
def test_output_relu_scalar_and_vector_queries(seed, n_in):
    rng = np.random.default_rng(500 + seed)
    sizes = [n_in, 5, 4, 3]
    net = random_net(rng, sizes, acts=["relu", "relu", "relu"], style=["gauss", "int"][seed % 2])
    assert net.has_output_activation
    region = Box(-np.ones(n_in), np.ones(n_in))
    for q in all_queries(3, rng):
        for r in run_all(net, region, q).values():
            assert_sound(net, region, q, r)
        # the stripped network is a different function: its bounds are not ours
        stripped = net.without_output_activation()
        assert not stripped.has_output_activation


def test_output_relu_kills_the_function():
    """An output ReLU that is off on the whole region: L = 0 exactly."""
    net = Network.from_params([(np.array([[1.0, 1.0]]), np.array([-10.0]))], ["relu"])
    region = Box([-1, -1], [1, 1])
    for p in NORMS:
        r = lipmip.lipschitz(net, region, Query.output(0, 1, p))
        assert r.lower == 0.0
        assert r.upper >= 0.0
        assert_sound(net, region, Query.output(0, 1, p), r)


def test_output_relu_scalar_with_mixed_signs():
    """c = (1, -1) on relu outputs: the head bound must use |c| (the two
    output slopes vary independently). Here c·W_last = 0, yet on the strip
    where only the first output ReLU is on the slope is (1, 0)."""
    W1 = np.eye(2)
    W2 = np.array([[1.0, 0.0], [1.0, 0.0]])
    b2 = np.array([0.0, -1.0])
    net = Network.from_params([(W1, np.zeros(2)), (W2, b2)], ["identity", "relu"])
    region = Box([-2, -2], [2, 2])
    for p in NORMS:
        q = Query.margin(0, 1, 2, p)
        assert exact_constant(net, region, q) == 1.0
        for r in run_all(net, region, q).values():
            assert_sound(net, region, q, r)
    W2 = np.array([[1.0, 1.0], [1.0, -1.0]])
    net = Network.from_params([(W1, np.zeros(2)), (W2, np.zeros(2))], ["identity", "relu"])
    for p in NORMS:
        q = Query.margin(0, 1, 2, p)
        for r in run_all(net, region, q).values():
            assert_sound(net, region, q, r)


# =============================================================================
# identity hidden layers
# =============================================================================
@pytest.mark.parametrize("seed", range(3))
def test_identity_hidden_layers(seed):
    rng = np.random.default_rng(600 + seed)
    net = random_net(rng, [2, 4, 4, 4, 2], acts=["identity", "relu", "identity", "identity"])
    region = Ball(rng.normal(size=2), 0.8, [1, 2, INF][seed])
    for q in all_queries(2, rng):
        for r in run_all(net, region, q).values():
            assert_sound(net, region, q, r)


# =============================================================================
# property tests over random small networks, regions and queries
# =============================================================================
@st.composite
def problems(draw, max_in=4):
    n_in = draw(st.integers(1, max_in))
    depth = draw(st.integers(1, 3))
    hidden = [draw(st.integers(1, 6)) for _ in range(depth - 1)]
    n_out = draw(st.integers(1, 3))
    style = draw(st.sampled_from(["gauss", "int", "sparse"]))
    acts = [draw(st.sampled_from(["relu", "relu", "identity"])) for _ in hidden]
    acts.append(draw(st.sampled_from(["identity", "identity", "relu"])))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    net = random_net(rng, [n_in] + hidden + [n_out], acts=acts, style=style)

    kind = draw(st.sampled_from(["box", "box", "degenerate_box", 1.0, 2.0, INF]))
    integral = style == "int" and draw(st.booleans())
    centre = np.round(rng.normal(size=n_in)) if integral else rng.normal(size=n_in)
    if kind in ("box", "degenerate_box"):
        half = np.ones(n_in) if integral else rng.uniform(0.01, 2.0, size=n_in)
        if kind == "degenerate_box":
            half = half * (rng.random(n_in) < 0.5)
        region = Box(centre - half, centre + half)
    else:
        region = Ball(centre, 1.0 if integral else float(rng.uniform(0.01, 2.0)), kind)

    qkind = draw(st.sampled_from(["scalar", "output", "margin", "vector"]))
    p = draw(st.sampled_from(NORMS))
    if qkind == "scalar":
        query = Query.scalar(rng.normal(size=n_out), p)
    elif qkind == "output":
        query = Query.output(draw(st.integers(0, n_out - 1)), n_out, p)
    elif qkind == "margin" and n_out >= 2:
        query = Query.margin(0, n_out - 1, n_out, p)
    else:
        query = Query.vector(p)
    return net, region, query


def _free_count(region) -> int:
    if isinstance(region, Box):
        return int(np.count_nonzero(region.hi > region.lo))
    return region.dim


@settings(PROPERTY, max_examples=200)
@given(problems())
def test_property_bounds_are_sound(problem):
    net, region, query = problem
    results = run_all(net, region, query)
    auto = results["auto"]
    assert auto.lower is not None and auto.upper is not None
    assert 0.0 <= auto.lower <= auto.upper
    assert math.isfinite(auto.upper)
    for r in results.values():
        check_witness_exactly(net, region, query, r)
    # every local value at fresh points of the region is <= L <= upper
    rng = np.random.default_rng(99)
    X = region.sample(3000, rng)
    free = region.hi > region.lo if isinstance(region, Box) else None
    sampled = np_local_values(query, np_jacobians(net, X), free).max()
    assert auto.upper >= sampled * (1 - 1e-12)
    # exact oracle where it applies
    if _free_count(region) <= 2 and sum(l.out_features for l in net.layers) <= 14:
        assert_sound(net, region, query, auto)


@settings(PROPERTY, max_examples=150)
@given(problems(max_in=2))
def test_property_exact_oracle_low_dimension(problem):
    """1 or 2 inputs: every method's bounds against the exact constant."""
    net, region, query = problem
    for r in run_all(net, region, query).values():
        assert_sound(net, region, query, r)


@PROPERTY
@given(problems(), st.integers(0, 2**31 - 1))
def test_property_sample_is_deterministic_and_seeded(problem, seed):
    net, region, query = problem
    r1 = lipmip.lipschitz(net, region, query, method="sample", seed=seed, samples=200)
    r2 = lipmip.lipschitz(net, region, query, method="sample", seed=seed, samples=200)
    assert r1.lower == r2.lower
    check_witness_exactly(net, region, query, r1)


def test_results_report_query_and_region():
    net = random_net(np.random.default_rng(0), [2, 3, 2])
    region = Ball([0.0, 0.0], 1.0, 2)
    r = lipmip.lipschitz(net, region, Query.margin(1, 0, 2, 2))
    assert r.query["kind"] == "scalar"
    assert r.region["type"] == "ball"
    assert r.status in ("bounded", "exact", "optimal")
    d = r.to_dict()
    assert d["lower"] == r.lower and d["upper"] == r.upper
    assert d["witness"]["value"] == r.lower


@pytest.mark.parametrize("norm", [None, 1, 2, "inf"])
def test_default_query_is_sound(norm):
    """No query given: the single output of a scalar net, else the Jacobian
    operator norm, with the ball's own norm unless norm= says otherwise."""
    rng = np.random.default_rng(8)
    for sizes in ([2, 4, 1], [2, 4, 2]):
        net = random_net(rng, sizes)
        region = Ball([0.1, -0.2], 0.9, 1)
        r = lipmip.lipschitz(net, region, input_norm=norm)
        expected_p = 1.0 if norm is None else lipmip.norms.parse_norm(norm)
        assert r.query["input_norm"] == lipmip.norms.norm_name(expected_p)
        q = Query.output(0, 1, expected_p) if sizes[-1] == 1 else Query.vector(expected_p)
        assert_sound(net, region, q, r)


# =============================================================================
# numerically hostile cases
# =============================================================================
def test_large_offsets_do_not_fake_a_lower_bound():
    """Huge biases make the outputs large while the slopes stay modest: the
    rounding of the forward passes must be subtracted, not counted as slope."""
    rng = np.random.default_rng(12)
    for scale in (1e6, 1e12, 1e15):
        W1 = rng.normal(size=(4, 1))
        b1 = np.abs(rng.normal(size=4)) * scale + scale  # every ReLU stably on
        W2 = rng.normal(size=(3, 4))
        b2 = rng.normal(size=3) * scale
        net = Network.from_params([(W1, b1), (W2, b2)])
        region = Box(-1e-3, 1e-3)
        for q in all_queries(3, rng):
            for r in run_all(net, region, q).values():
                assert_sound(net, region, q, r)


def test_tiny_region():
    rng = np.random.default_rng(13)
    net = random_net(rng, [2, 5, 5, 2])
    for region in (Box([0.1, 0.2], [0.1 + 1e-9, 0.2 + 1e-9]), Ball([0.1, 0.2], 1e-10, 2), Ball([0.1, 0.2], 1e-10, 1)):
        for q in all_queries(2, rng):
            for r in run_all(net, region, q).values():
                assert_sound(net, region, q, r)


def test_zero_network():
    net = Network.from_params([(np.zeros((3, 2)), np.zeros(3)), (np.zeros((1, 3)), np.zeros(1))])
    r = lipmip.lipschitz(net, Box([-1, -1], [1, 1]))
    assert r.lower == 0.0
    assert r.upper == 0.0


def test_product_bound_is_never_nan():
    """A finite network whose first-layer ℓ1 operator norm overflows to inf and
    whose output layer is zero: L = 0, and the upper bound must be a number
    (inf would be sound, NaN is not a bound at all)."""
    net = Network.from_params([(np.array([[1e308], [1e308]]), np.zeros(2)), (np.zeros((1, 2)), np.zeros(1))])
    region = Box(0.0, 1.0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = lipmip.lipschitz(net, region, Query.output(0, 1, 1.0), method="naive")
    assert not math.isnan(r.upper), f"upper bound is {r.upper!r}"
    assert r.upper >= 0.0


@pytest.mark.parametrize("p", NORMS)
def test_upper_bound_survives_cancellation_in_the_head(p):
    """c·W = 1 + 2^-60 - 1 = 2^-60 exactly, but float64 sums it to 0; the
    relative 1e-10 safety factor of a computed 0 is still 0."""
    W = np.array([[1.0], [2.0**-60], [-1.0]])
    net = Network([Layer(W, np.zeros(3), "identity")])
    q = Query.scalar([1.0, 1.0, 1.0], p)
    region = Box(0.0, 1.0)
    assert exact_constant(net, region, q) == 2.0**-60
    r = lipmip.lipschitz(net, region, q, method="naive")
    assert Fr(r.upper) >= Fr(2) ** -60, f"upper {r.upper!r} < L = 2^-60"


def test_witness_sound_on_a_subnormal_region():
    rng = np.random.default_rng(0)
    failures = []
    for _ in range(20):
        w = float(rng.normal())
        net = Network([Layer([[w]], [0.0], "identity")])
        lo = float(rng.uniform(0, 1e-310))
        region = Box(lo, lo + float(rng.uniform(1e-312, 1e-310)))
        r = lipmip.lipschitz(net, region, Query.output(0, 1, INF), method="sample")
        if Fr(float(r.lower)) > abs(Fr(w)):
            failures.append((w, region, r.lower))
    assert not failures, f"certified lower > exact |w| in {len(failures)} cases, e.g. {failures[0]}"


def test_witness_sound_when_l2_distance_underflows():
    rng = np.random.default_rng(0)
    failures = []
    for _ in range(20):
        W = rng.normal(size=(1, 2))
        net = Network([Layer(W, np.zeros(1), "identity")])
        width = float(10 ** rng.uniform(-161, -158))
        lo = rng.normal(size=2) * width
        region = Box(lo, lo + width)
        q = Query.output(0, 1, 2)
        r = lipmip.lipschitz(net, region, q, method="sample")
        exact_sq = Fr(float(W[0, 0])) ** 2 + Fr(float(W[0, 1])) ** 2
        if Fr(float(r.lower)) ** 2 > exact_sq:
            failures.append((float(r.lower), math.sqrt(float(exact_sq)), width))
    assert not failures, f"certified lower > exact L in {len(failures)} cases, e.g. (lower, L, width) = {failures[0]}"


def test_upper_bound_with_tiny_weights_l2():
    net = Network([Layer([[1e-170, 1e-170]], [0.0], "identity")])
    q = Query.output(0, 1, 2)
    region = Box([0.0, 0.0], [1.0, 1.0])
    exact_sq = 2 * Fr(1e-170) ** 2
    r = lipmip.lipschitz(net, region, q)
    assert r.lower is not None and Fr(r.lower) ** 2 <= exact_sq
    assert Fr(r.upper) ** 2 >= exact_sq, f"upper {r.upper!r} < L = {math.sqrt(2) * 1e-170!r} (lower is {r.lower!r})"


def test_product_bound_underflow():
    net = Network([Layer([[1e-100]], [0.0], "identity") for _ in range(4)])
    r = lipmip.lipschitz(net, Box(0.0, 1.0), method="naive")
    assert Fr(r.upper) >= Fr(1e-100) ** 4, f"upper {r.upper!r} < L = (1e-100)^4 > 0"
