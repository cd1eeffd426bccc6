"""Input regions: Box and Ball validation, membership, sampling, bounding boxes."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction as Fr

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import lipmip
from lipmip import Ball, Box, InvalidRegionError, LipmipError, Network, Query, Region
from lipmip.domains import as_region

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)
NORMS = [1.0, 2.0, math.inf]


def exact_pnorm_le(v, p, r) -> bool:
    """``‖v‖_p <= r`` in exact arithmetic on the float values."""
    v = [Fr(float(x)) for x in v]
    r = Fr(float(r))
    if p == 1.0:
        return sum(abs(x) for x in v) <= r
    if p == math.inf:
        return max(abs(x) for x in v) <= r
    return sum(x * x for x in v) <= r * r


# =============================================================================
# Box
# =============================================================================
class TestBox:
    def test_basic(self):
        b = Box([0.0, -1.0, 2.0], [1.0, 1.0, 2.0])
        assert b.dim == 3
        np.testing.assert_array_equal(b.center, [0.5, 0.0, 2.0])
        np.testing.assert_array_equal(b.radii, [0.5, 1.0, 0.0])
        assert b.lo.dtype == np.float64 and b.hi.dtype == np.float64
        assert b.bounding_box() is b
        assert isinstance(b, Region)

    def test_scalar_broadcast(self):
        b = Box(0, [1, 2, 3])
        np.testing.assert_array_equal(b.lo, [0, 0, 0])
        b = Box([-1, -2], 5)
        np.testing.assert_array_equal(b.hi, [5, 5])
        b = Box(-1, 1)
        assert b.dim == 1 and b.lo.shape == (1,)

    def test_multidimensional_bounds_are_flattened(self):
        b = Box(np.zeros((1, 2, 2)), np.ones((1, 2, 2)))
        assert b.dim == 4

    def test_inverted_names_index(self):
        with pytest.raises(InvalidRegionError) as info:
            Box([0.0, 1.0, 0.0, 5.0], [1.0, 1.0, -0.5, 4.0])
        msg = str(info.value)
        assert "index 2" in msg and "2 coordinate" in msg
        with pytest.raises(InvalidRegionError, match="index 0"):
            Box(1.0, 0.0)

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite(self, bad):
        with pytest.raises(InvalidRegionError, match="NaN or inf"):
            Box([0.0, bad], [1.0, 1.0])
        with pytest.raises(InvalidRegionError, match="upper"):
            Box([0.0, 0.0], [1.0, bad])

    def test_length_mismatch_and_empty(self):
        with pytest.raises(InvalidRegionError, match="different lengths"):
            Box([0, 0], [1, 1, 1])
        with pytest.raises(InvalidRegionError, match="no coordinates"):
            Box([], [])
        with pytest.raises(InvalidRegionError, match="numeric"):
            Box(["a"], [1])

    def test_degenerate_box_allowed(self):
        b = Box([1.0, 2.0], [1.0, 3.0])
        pts = b.sample(100, np.random.default_rng(0))
        assert (pts[:, 0] == 1.0).all()
        assert b.contains(pts).all()

    def test_read_only_and_copied(self):
        lo = np.zeros(2)
        b = Box(lo, 1.0)
        lo[0] = 5.0
        assert b.lo[0] == 0.0
        with pytest.raises(ValueError):
            b.lo[0] = 1.0
        with pytest.raises(ValueError):
            b.hi[0] = 1.0

    def test_contains(self):
        b = Box([0.0, 0.0], [1.0, 2.0])
        assert b.contains([0.0, 2.0])
        assert b.contains([1.0, 0.0])
        assert not b.contains([1.0 + 1e-15, 0.0])
        assert b.contains([1.0 + 1e-15, 0.0], tol=1e-12)
        assert not b.contains([0.5, -1e-300])
        np.testing.assert_array_equal(b.contains([[0.5, 0.5], [2.0, 0.5], [0.5, 3.0]]), [True, False, False])

    def test_sample_in_box_and_deterministic(self):
        b = Box([-1.0, 10.0, 0.0], [1.0, 10.5, 1e-9])
        pts = b.sample(5000, np.random.default_rng(3))
        assert pts.shape == (5000, 3)
        assert b.contains(pts).all()
        np.testing.assert_array_equal(pts, b.sample(5000, np.random.default_rng(3)))
        # every coordinate covers its range
        assert (pts.min(axis=0) < b.lo + 0.01 * (b.hi - b.lo)).all()
        assert (pts.max(axis=0) > b.hi - 0.01 * (b.hi - b.lo)).all()

    def test_to_dict_and_repr(self):
        b = Box([0, 1], [2, 3])
        assert b.to_dict() == {"type": "box", "lo": [0.0, 1.0], "hi": [2.0, 3.0]}
        assert "Box" in repr(b)
        assert "dim=10" in repr(Box(np.zeros(10), 1.0))

    def test_sample_of_a_huge_box_is_finite(self):
        b = Box(-1e308, 1e308)
        with np.errstate(over="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pts = b.sample(10, np.random.default_rng(0))
        assert np.isfinite(pts).all() and b.contains(pts).all()

    def test_contains_rejects_wrong_length(self):
        b = Box(0.0, 1.0)
        try:
            answer = b.contains([0.5, 0.7])
        except LipmipError:
            return
        raise AssertionError(f"contains() answered {answer!r} for a point of dimension 2 in a 1-D box")


# =============================================================================
# Ball
# =============================================================================
class TestBall:
    @pytest.mark.parametrize(
        "p,expected",
        [
            (1, 1.0),
            (2, 2.0),
            (math.inf, math.inf),
            ("l1", 1.0),
            ("L2", 2.0),
            ("inf", math.inf),
            ("linf", math.inf),
            ("∞", math.inf),
            ("ℓ1", 1.0),
            ("ℓ2", 2.0),
            (np.float64(2), 2.0),
            (np.int64(1), 1.0),
            ("euclidean", 2.0),
            ("max", math.inf),
        ],
    )
    def test_norm_spellings(self, p, expected):
        assert Ball([0.0], 1.0, p).p == expected

    @pytest.mark.parametrize("p", ["ℓ∞", "l∞"])
    def test_norm_spelling_l_infinity_symbol(self, p):
        assert Ball([0.0], 1.0, p).p == math.inf

    def test_default_norm_is_inf(self):
        assert Ball([0.0, 0.0], 1.0).p == math.inf

    @pytest.mark.parametrize("p", [3, 0, -1, 0.5, "l7", "l3", "", None, True, float("nan"), [2]])
    def test_unknown_norm(self, p):
        with pytest.raises(InvalidRegionError, match="ball norm"):
            Ball([0.0, 0.0], 1.0, p)

    @pytest.mark.parametrize("r", [0.0, -1.0, -0.0, np.nan, np.inf, -np.inf])
    def test_bad_radius(self, r):
        with pytest.raises(InvalidRegionError, match="radius"):
            Ball([0.0], r, 2)

    @pytest.mark.parametrize("r", ["abc", None, [1.0, 2.0], object()])
    def test_non_numeric_radius(self, r):
        with pytest.raises(InvalidRegionError, match="radius"):
            Ball([0.0], r, 2)

    def test_bad_center(self):
        with pytest.raises(InvalidRegionError, match="NaN or inf"):
            Ball([0.0, np.nan], 1.0)
        with pytest.raises(InvalidRegionError, match="no coordinates"):
            Ball([], 1.0)
        with pytest.raises(InvalidRegionError, match="numeric"):
            Ball(["x"], 1.0)

    def test_scalar_center_and_read_only(self):
        b = Ball(0.5, 1.0, 2)
        assert b.dim == 1
        c = np.array([1.0, 2.0])
        b = Ball(c, 1.0)
        c[0] = 99.0
        assert b.center[0] == 1.0
        with pytest.raises(ValueError):
            b.center[0] = 0.0

    @pytest.mark.parametrize("p", NORMS)
    def test_contains(self, p):
        b = Ball([1.0, -1.0], 2.0, p)
        assert b.contains([1.0, -1.0])
        assert b.contains([3.0, -1.0])  # on the boundary for every p
        assert not b.contains([3.0 + 1e-12, -1.0])
        corner = [2.0, 0.0]  # ‖(1, 1)‖_p = 2, sqrt 2, 1
        assert b.contains(corner)
        far_corner = [2.9, 0.9]  # ‖(1.9, 1.9)‖_p = 3.8, 2.69, 1.9
        assert bool(b.contains(far_corner)) == (p == math.inf)
        np.testing.assert_array_equal(b.contains([[1.0, -1.0], [10.0, 0.0]]), [True, False])

    @pytest.mark.parametrize("p", NORMS)
    @pytest.mark.parametrize("d", [1, 2, 3, 7])
    def test_samples_lie_in_the_ball(self, p, d):
        rng = np.random.default_rng(d)
        b = Ball(rng.normal(size=d) * 3, 0.7, p)
        pts = b.sample(3000, rng)
        assert pts.shape == (3000, d)
        assert b.contains(pts).all()
        u = (pts - b.center) / b.radius
        # some samples reach close to the boundary
        norms = np.linalg.norm(u, ord=p, axis=1)
        assert norms.max() > 0.97
        # symmetric about the centre
        assert np.abs(u.mean(axis=0)).max() < 0.1

    @pytest.mark.parametrize("p", NORMS)
    @pytest.mark.parametrize("d", [1, 2, 3, 5])
    def test_samples_are_uniform(self, p, d):
        """For a uniform point of the unit ball, ‖u‖_p^d is uniform on [0, 1]
        (the volume of the ball of radius s scales as s^d), and the direction
        is symmetric under coordinate sign flips."""
        rng = np.random.default_rng(100 + d)
        b = Ball(np.zeros(d), 1.0, p)
        u = b.sample(4000, rng)
        radial = np.linalg.norm(u, ord=p, axis=1) ** d
        assert stats.kstest(radial, "uniform").pvalue > 1e-4
        signs = (u > 0).mean(axis=0)
        assert np.abs(signs - 0.5).max() < 0.05

    def test_l1_samples_are_uniform_within_the_cross_polytope(self):
        """In 2-D the ℓ1 ball is a diamond: the fraction of samples in the
        inner diamond of half the radius is 1/4, and each quadrant holds 1/4."""
        rng = np.random.default_rng(5)
        u = Ball([0.0, 0.0], 1.0, 1).sample(20000, rng)
        inner = (np.abs(u).sum(axis=1) <= 0.5).mean()
        assert abs(inner - 0.25) < 0.015
        quadrant = ((u[:, 0] > 0) & (u[:, 1] > 0)).mean()
        assert abs(quadrant - 0.25) < 0.015
        # first coordinate marginal of a uniform diamond: density (1 - |x|)
        assert stats.kstest(np.abs(u[:, 0]), lambda s: 1 - (1 - s) ** 2).pvalue > 1e-4

    @pytest.mark.parametrize("p", NORMS)
    def test_bounding_box(self, p):
        b = Ball([1.0, -2.0, 0.5], 0.25, p)
        bb = b.bounding_box()
        assert isinstance(bb, Box)
        np.testing.assert_array_equal(bb.lo, [0.75, -2.25, 0.25])
        np.testing.assert_array_equal(bb.hi, [1.25, -1.75, 0.75])
        assert bb.contains(b.sample(2000, np.random.default_rng(0))).all()
        # it is the smallest: the extreme points c ± r e_i are in the ball
        for i in range(3):
            e = np.zeros(3)
            e[i] = 0.25
            assert b.contains(b.center + e) and b.contains(b.center - e)

    def test_bounding_box_holds_the_ball_exactly(self):
        rng = np.random.default_rng(0)
        misses = 0
        for _ in range(200):
            c, r = float(rng.normal()), float(rng.random())
            bb = Ball([c], r, 2).bounding_box()
            if Fr(float(bb.lo[0])) > Fr(c) - Fr(r) or Fr(float(bb.hi[0])) < Fr(c) + Fr(r):
                misses += 1
        assert misses == 0, f"{misses}/200 bounding boxes do not contain their ball in exact arithmetic"

    def test_l2_contains_is_exact_for_tiny_balls(self):
        r = 1e-160
        b = Ball([0.0, 0.0], r, 2)
        x = np.array([1.0001 * r / math.sqrt(2)] * 2)
        assert not exact_pnorm_le(x, 2.0, r)  # outside, exactly
        assert not b.contains(x), "a point outside the ball is reported inside"

    def test_to_dict_and_repr(self):
        b = Ball([0.0, 1.0], 0.5, 1)
        assert b.to_dict() == {"type": "ball", "center": [0.0, 1.0], "radius": 0.5, "p": "1"}
        assert Ball([0.0], 1.0).to_dict()["p"] == "inf"
        assert "p=2" in repr(Ball([0.0], 1.0, 2))


@PROPERTY
@given(
    d=st.integers(1, 6),
    p=st.sampled_from(NORMS),
    log_r=st.floats(-8, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_ball_samples_in_ball_exactly(d, p, log_r, seed):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=d) * 10 ** rng.uniform(-3, 3)
    r = 10.0**log_r
    b = Ball(c, r, p)
    pts = b.sample(200, rng)
    assert b.contains(pts).all()
    assert b.bounding_box().contains(pts).all()
    for x in pts[:20]:
        assert exact_pnorm_le(x - c, p, r * (1 + 1e-12))


@PROPERTY
@given(d=st.integers(1, 6), seed=st.integers(0, 2**32 - 1), degenerate=st.booleans())
def test_property_box_samples_in_box(d, seed, degenerate):
    rng = np.random.default_rng(seed)
    lo = rng.normal(size=d) * 10 ** rng.uniform(-3, 3)
    width = 10 ** rng.uniform(-10, 2, size=d)
    if degenerate:
        width = width * (rng.random(d) < 0.5)
    b = Box(lo, lo + width)
    pts = b.sample(300, rng)
    assert b.contains(pts).all()
    assert ((pts >= b.lo) & (pts <= b.hi)).all()


# =============================================================================
# regions against networks
# =============================================================================
def _net(n_in: int) -> Network:
    rng = np.random.default_rng(n_in)
    return Network.from_params(
        [(rng.normal(size=(3, n_in)), rng.normal(size=3)), (rng.normal(size=(1, 3)), np.zeros(1))]
    )


@pytest.mark.parametrize(
    "region",
    [Box([0.0, 0.0], [1.0, 1.0]), Box(0.0, 1.0), Ball([0.0] * 4, 1.0, 2), Ball([0.0], 1.0, 1), Ball(np.zeros(3), 1.0)],
)
@pytest.mark.parametrize("method", ["auto", "sample", "naive"])
def test_dimension_mismatch(region, method):
    with pytest.raises(InvalidRegionError) as info:
        lipmip.lipschitz(_net(5), region, method=method)
    assert str(region.dim) in str(info.value) and "5" in str(info.value)
    with pytest.raises(InvalidRegionError):
        lipmip.lipschitz(_net(5), region, Query.output(0, 1), method=method)


def test_check_network():
    Box(np.zeros(5), 1.0).check_network(_net(5))
    with pytest.raises(InvalidRegionError, match="dimension 2"):
        Ball([0.0, 0.0], 1.0).check_network(_net(3))


@pytest.mark.parametrize("obj", [None, (0.0, 1.0), [[0.0], [1.0]], {"lo": 0, "hi": 1}, np.zeros(3), "box"])
def test_non_region_objects(obj):
    with pytest.raises(InvalidRegionError, match="Box or lipmip.Ball"):
        as_region(obj)
    with pytest.raises(InvalidRegionError):
        lipmip.lipschitz(_net(1), obj)


def test_region_is_abstract():
    with pytest.raises(TypeError):
        Region()  # type: ignore[abstract]


def test_regions_work_with_image_networks():
    """A network with an image input shape still takes flat regions of input_dim."""
    rng = np.random.default_rng(0)
    net = Network.from_params(
        [(rng.normal(size=(3, 4)), np.zeros(3)), (rng.normal(size=(1, 3)), np.zeros(1))], input_shape=(1, 2, 2)
    )
    r = lipmip.lipschitz(net, Box(np.zeros(4), 1.0))
    assert 0 <= r.lower <= r.upper
    with pytest.raises(InvalidRegionError):
        lipmip.lipschitz(net, Box(np.zeros((1, 2, 3)), 1.0))
