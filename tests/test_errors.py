"""Every public entry point refuses bad input with a LipmipError naming the problem."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import lipmip
from lipmip import (
    Ball,
    Box,
    InvalidQueryError,
    InvalidRegionError,
    Layer,
    LipmipError,
    Network,
    NonFiniteError,
    Query,
    ShapeError,
    UnknownActivationError,
)
from lipmip import errors as errors_module
from lipmip.norms import dual_norm, norm_name, operator_norm, parse_norm


@pytest.fixture
def net() -> Network:
    rng = np.random.default_rng(0)
    return Network.from_params(
        [(rng.normal(size=(4, 2)), rng.normal(size=4)), (rng.normal(size=(3, 4)), rng.normal(size=3))]
    )


@pytest.fixture
def box() -> Box:
    return Box([-1.0, -1.0], [1.0, 1.0])


# =============================================================================
# the hierarchy
# =============================================================================
def test_every_error_is_a_lipmip_error():
    names = errors_module.__all__
    assert "LipmipError" in names
    for name in names:
        cls = getattr(errors_module, name)
        assert issubclass(cls, LipmipError) and issubclass(cls, Exception)
        # exported at the top level too
        assert getattr(lipmip, name) is cls


def test_specific_relationships():
    assert issubclass(errors_module.UnsupportedOperatorError, errors_module.ModelFormatError)
    for cls in (ShapeError, NonFiniteError, InvalidRegionError, InvalidQueryError, UnknownActivationError):
        assert cls.__mro__[1] is LipmipError
    # distinct classes: catching one does not catch another
    assert not issubclass(InvalidRegionError, InvalidQueryError)
    assert not issubclass(ShapeError, NonFiniteError)


def test_lipmip_error_is_not_a_builtin_value_error():
    """Users catch LipmipError for their mistakes; lipmip's own messages must
    not be confused with arbitrary numpy ValueErrors."""
    assert not issubclass(LipmipError, ValueError)


# =============================================================================
# Query
# =============================================================================
class TestQueryErrors:
    def test_wrong_c_length(self, net, box):
        for method in ("auto", "sample", "naive"):
            with pytest.raises(InvalidQueryError) as info:
                lipmip.lipschitz(net, box, Query.scalar([1.0, -1.0]), method=method)
            assert "2 entries" in str(info.value) and "3 outputs" in str(info.value)
        with pytest.raises(InvalidQueryError):
            lipmip.lipschitz(net, box, Query.output(0, 4))
        with pytest.raises(InvalidQueryError):
            Query.margin(0, 1, 2).check_network(net)

    @pytest.mark.parametrize("c", [[], [np.nan, 1.0], [np.inf], "abc", [[1.0], ["x"]], None])
    def test_bad_functional(self, c):
        with pytest.raises(InvalidQueryError, match="functional c"):
            Query.scalar(c)

    def test_2d_functional_is_flattened(self):
        assert Query.scalar([[1.0, 2.0]]).c.shape == (2,)

    def test_margin_same_output(self):
        with pytest.raises(InvalidQueryError, match="two different outputs"):
            Query.margin(1, 1, 3)

    @pytest.mark.parametrize("i,j,n", [(3, 0, 3), (0, -1, 3), (1.0, 0, 3), (True, 0, 3), ("0", 1, 3)])
    def test_margin_bad_index(self, i, j, n):
        with pytest.raises(InvalidQueryError, match="out of range"):
            Query.margin(i, j, n)

    @pytest.mark.parametrize("i", [3, -1, 1.5, None, False])
    def test_output_bad_index(self, i):
        with pytest.raises(InvalidQueryError, match="out of range"):
            Query.output(i, 3)

    def test_numpy_integer_indices_work(self):
        q = Query.margin(np.int64(2), np.int32(0), 3)
        np.testing.assert_array_equal(q.c, [-1.0, 0.0, 1.0])
        assert "f[2] - f[0]" in q.describe()

    @pytest.mark.parametrize("norm", [3, 0, "l7", "fro", None, True, 1.5, [1]])
    def test_unknown_norm(self, norm):
        with pytest.raises(InvalidQueryError, match="input norm"):
            Query.scalar([1.0], norm)
        with pytest.raises(InvalidQueryError, match="input norm"):
            Query.output(0, 1, norm)
        with pytest.raises(InvalidQueryError, match="input norm"):
            Query.vector(norm)

    @pytest.mark.parametrize("a,b", [(1, math.inf), (math.inf, 1), (2, 1), (1, 2), ("inf", "l2")])
    def test_vector_norm_pairs(self, a, b):
        with pytest.raises(InvalidQueryError) as info:
            Query.vector(a, b)
        assert "→" in str(info.value) and "not supported" in str(info.value)

    def test_vector_unknown_output_norm(self):
        with pytest.raises(InvalidQueryError, match="output norm"):
            Query.vector(2, 3)

    def test_supported_vector_pairs(self):
        for p in (1, 2, "inf"):
            q = Query.vector(p, p)
            assert q.output_norm == q.input_norm == parse_norm(p)
        assert Query.vector("l1").output_norm == 1.0

    def test_query_and_norm_together(self, net, box):
        with pytest.raises(InvalidQueryError, match="either"):
            lipmip.lipschitz(net, box, Query.vector(2), input_norm=2)

    def test_default_query_bad_norm(self, net, box):
        with pytest.raises(InvalidQueryError, match="l7"):
            lipmip.lipschitz(net, box, input_norm="l7")

    @pytest.mark.parametrize(
        "make", [lambda: Query.output(0, -1), lambda: Query.output(0, 2.5), lambda: Query.margin(0, 1, "3")]
    )
    def test_bad_num_outputs(self, make):
        with pytest.raises(InvalidQueryError):
            make()


# =============================================================================
# lipmip.lipschitz
# =============================================================================
class TestLipschitzErrors:
    @pytest.mark.parametrize("method", ["exact", "AUTO", "", "milp", None, 3])
    def test_unknown_method(self, net, box, method):
        with pytest.raises(LipmipError) as info:
            lipmip.lipschitz(net, box, method=method)
        assert "method" in str(info.value) and "auto" in str(info.value)

    @pytest.mark.parametrize("obj", [None, "net.npz", [(np.eye(2), np.zeros(2))], object(), Layer(np.eye(2))])
    def test_not_a_network(self, obj, box):
        with pytest.raises(LipmipError, match="Network"):
            lipmip.lipschitz(obj, box)

    @pytest.mark.parametrize("obj", [None, (0.0, 1.0), np.zeros(2), "box"])
    def test_not_a_region(self, net, obj):
        with pytest.raises(InvalidRegionError, match="Box or lipmip.Ball"):
            lipmip.lipschitz(net, obj)

    def test_region_dimension(self, net):
        with pytest.raises(InvalidRegionError, match="3 but the network takes 2"):
            lipmip.lipschitz(net, Ball(np.zeros(3), 1.0))

    def test_checks_happen_before_work(self, net, box):
        """A bad query is refused at once, whatever the method."""
        with pytest.raises(InvalidQueryError):
            lipmip.lipschitz(net, box, Query.scalar(np.ones(7)), method="sample", samples=10**9)

    @pytest.mark.parametrize("query", ["f[0]", np.array([1.0, 0.0, 0.0]), 2])
    def test_not_a_query(self, net, box, query):
        with pytest.raises(InvalidQueryError):
            lipmip.lipschitz(net, box, query)

    @pytest.mark.parametrize(
        "method,options", [("naive", {"samples": 10}), ("sample", {"sample": 10}), ("auto", {"seeed": 1})]
    )
    def test_unknown_option(self, net, box, method, options):
        with pytest.raises(LipmipError, match=next(iter(options))):
            lipmip.lipschitz(net, box, method=method, **options)

    @pytest.mark.parametrize(
        "options,name",
        [
            ({"samples": -1}, "samples"),
            ({"samples": 2.5}, "samples"),
            ({"samples": True}, "samples"),
            ({"candidates": 0}, "candidates"),
            ({"candidates": -3}, "candidates"),
        ],
    )
    @pytest.mark.parametrize("method", ["sample", "auto"])
    def test_bad_sample_options(self, net, box, options, name, method):
        with pytest.raises(LipmipError, match=name):
            lipmip.lipschitz(net, box, method=method, **options)

    def test_good_sample_options(self, net, box):
        r = lipmip.lipschitz(net, box, method="sample", samples=0, candidates=1, seed=np.int64(3))
        assert r.lower >= 0.0 and r.details["samples"] == 1

    def test_unhashable_method(self, net, box):
        with pytest.raises(LipmipError):
            lipmip.lipschitz(net, box, method=["auto"])


# =============================================================================
# Network, Layer, regions: bad input through the public constructors
# =============================================================================
class TestConstructorsRaiseLipmipErrors:
    @pytest.mark.parametrize(
        "make",
        [
            lambda: Network([]),
            lambda: Network([(np.ones((2, 2)), np.zeros(3))]),
            lambda: Network([(np.ones((2, 2)), np.zeros(2)), (np.ones((1, 3)), np.zeros(1))]),
            lambda: Network.from_params([(np.ones((2, 2)), np.zeros(2))], ["relu", "relu"]),
            lambda: Network.from_params([np.ones((2, 2))]),
            lambda: Network([Layer(np.ones((2, 2)))], input_shape=(3,)),
            lambda: Layer(np.ones(3)),
            lambda: Layer([[np.nan]]),
            lambda: Layer([[1.0]], [0.0], "softplus"),
            lambda: Layer([[1.0]], [0.0], 0),
            lambda: Box([1.0], [0.0]),
            lambda: Box([np.nan], [0.0]),
            lambda: Ball([0.0], 0.0),
            lambda: Ball([0.0], 1.0, 3),
            lambda: Ball([0.0], 1.0, "l7"),
            lambda: Query.scalar([]),
            lambda: Query.vector(1, math.inf),
            lambda: Query.margin(0, 0, 2),
        ],
    )
    def test_raises_lipmip_error(self, make):
        with pytest.raises(LipmipError) as info:
            make()
        assert str(info.value)  # a message, never empty

    def test_forward_with_bad_input(self, net):
        for x, cls in ((np.zeros(3), ShapeError), ([np.nan, 0.0], NonFiniteError), ("ab", ShapeError)):
            with pytest.raises(cls):
                net(x)
            with pytest.raises(cls):
                net.jacobian(x)

    def test_complex_weights_rejected(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(LipmipError):
                Layer(np.array([[1.0 + 2.0j]]))


# =============================================================================
# norms helpers
# =============================================================================
def test_norm_helpers():
    assert dual_norm(1) == math.inf and dual_norm(2) == 2.0 and dual_norm("inf") == 1.0
    assert [norm_name(p) for p in (1, 2, math.inf)] == ["1", "2", "inf"]
    with pytest.raises(InvalidQueryError):
        dual_norm(3)
    with pytest.raises(InvalidRegionError, match="thing"):
        parse_norm(4, InvalidRegionError, "thing")
    M = np.array([[1.0, -2.0], [3.0, 0.5]])
    assert operator_norm(M, 1) == 4.0
    assert operator_norm(M, math.inf) == 3.5
    assert operator_norm(M, 2) == pytest.approx(np.linalg.svd(M, compute_uv=False)[0], rel=1e-15)
