"""LipSDP-Neuron (lipmip.lipsdp) against exact answers.

Local bounds are compared with the exact local constant from activation-region
enumeration, global ones with the exact constant over a very large box (a
lower bound on the global one); both with the norm product, which LipSDP never
exceeds in exact arithmetic. The certification is tested on its own by
feeding it a solver answer that is wrong.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from nets import random_net

import lipmip
from lipmip import Ball, Box, Layer, Network, Query
from lipmip.errors import InvalidQueryError, LipmipError, SolverUnavailableError
from lipmip.lipsdp import bound, lipsdp_upper_bound
from lipmip.lipsdp.solvers import Solution

EXACT = "enumerate"


def random_case(seed: int):
    """A small network (1-3 layers, widths <= 6, 1-3 inputs, output ReLU in
    some), an ℓ2 ball or a box, and a scalar or vector ℓ2 query."""
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 4))
    sizes = [n_in] + [int(rng.integers(1, 7)) for _ in range(int(rng.integers(0, 3)))] + [int(rng.integers(1, 4))]
    net = random_net(rng, sizes, style=("gauss", "int", "sparse", "nobias")[seed % 4], output_relu=seed % 3 == 0)
    center = rng.standard_normal(n_in)
    radius = float(rng.choice([0.1, 0.5, 1.5]))
    if seed % 2:
        region = Ball(center, radius, 2)
    else:
        region = Box(center - radius, center + radius * rng.random(n_in))
    query = Query.vector(2) if seed % 5 < 2 else Query.scalar(rng.standard_normal(net.output_dim), 2)
    return net, region, query


def pure_product(net: Network, query: Query) -> float:
    """``‖c‖ ‖W_L‖ Π ‖W_k‖`` (float; LipSDP-Neuron is at most this in exact arithmetic)."""
    value = math.prod(float(np.linalg.norm(layer.W, 2)) for layer in net.layers)
    return value * (1.0 if query.c is None else float(np.linalg.norm(query.c)))


CASES = list(range(36))


@pytest.mark.parametrize("seed", CASES)
def test_local_and_global_bracket_the_exact_values(seed):
    net, region, query = random_case(seed)
    exact_local = lipmip.lipschitz(net, region, query, method=EXACT)
    local = lipsdp_upper_bound(net, region, query, local=True)
    glob = lipsdp_upper_bound(net, region, query, local=False)
    assert local.upper is not None and glob.upper is not None, (local.details, glob.details)
    assert local.lower is None and local.method == "lipsdp"
    # sound: above the exact local value
    assert local.upper >= exact_local.lower, (local.upper, exact_local.lower)
    assert glob.upper >= exact_local.lower
    # global: above the exact constant over a very large box (a lower bound on the global constant)
    big = Box(np.full(net.input_dim, -1e3), np.full(net.input_dim, 1e3))
    assert glob.upper >= lipmip.lipschitz(net, big, query, method=EXACT).lower
    # never looser than the norm product (exact arithmetic), nor local looser than global
    slack = 1e-6
    assert glob.upper <= pure_product(net, query) * (1 + slack) + 1e-12
    if not (net.has_output_activation and query.c is not None):  # naive uses the triangle inequality there
        naive = lipmip.lipschitz(net, region, query, method="naive").upper
        assert glob.upper <= naive * (1 + slack) + 1e-12
    assert local.upper <= glob.upper * (1 + slack) + 1e-12
    assert local.details["scope"] == "local" and glob.details["scope"].startswith("global")


def test_one_hidden_neuron_is_exact():
    """f(x) = -3 relu(2x + 0.5): L = 6 globally; LipSDP is exact here
    (ρ = min_λ 4λ² / (2λ - 9) = 36 at λ = 9)."""
    net = Network([Layer([[2.0]], [0.5]), Layer([[-3.0]], [0.0], "identity")])
    q = Query.output(0, 1, 2)
    g = lipsdp_upper_bound(net, Ball([0.0], 1.0, 2), q, local=False)
    assert 6.0 <= g.upper <= 6.0 * (1 + 1e-6)
    active = lipsdp_upper_bound(net, Ball([3.0], 1.0, 2), q)
    assert 6.0 <= active.upper <= 6.0 * (1 + 1e-6)
    assert active.details["free_neurons"] == 0  # stable: no SDP at all
    inactive = lipsdp_upper_bound(net, Ball([-3.0], 1.0, 2), q)
    assert inactive.upper == 0.0


@pytest.mark.parametrize("query", [Query.vector(2), Query.scalar([1.0, -2.0, 0.5], 2)])
def test_single_affine_layer_gives_the_exact_norm(query):
    """No hidden neuron at all (LipSDP's own code crashes here): the answer
    is ‖W‖₂ (‖cW‖₂), proven, within 1e-6."""
    rng = np.random.default_rng(4)
    W = rng.standard_normal((3, 5))
    net = Network([Layer(W, rng.standard_normal(3), "identity")])
    region = Ball(np.zeros(5), 1.0, 2)
    exact = float(np.linalg.norm(W, 2)) if query.c is None else float(np.linalg.norm(query.c @ W))
    for local in (True, False):
        r = lipsdp_upper_bound(net, region, query, local=local)
        assert r.upper >= lipmip.lipschitz(net, region, query, method=EXACT).lower
        assert exact * (1 - 1e-12) <= r.upper <= exact * (1 + 1e-6)
        assert r.details["solver"] is None


def test_output_relu_and_identity_hidden_layers():
    rng = np.random.default_rng(8)
    nets = [
        random_net(rng, [3, 5, 4, 2], output_relu=True),
        random_net(rng, [2, 4, 4, 3], identity_hidden=0),
        random_net(rng, [2, 3, 3, 2], identity_hidden=1, output_relu=True),
    ]
    for net in nets:
        region = Ball(rng.standard_normal(net.input_dim), 0.8, 2)
        for query in (Query.vector(2), Query.scalar(rng.standard_normal(net.output_dim), 2)):
            exact = lipmip.lipschitz(net, region, query, method=EXACT).lower
            for local in (True, False):
                r = lipsdp_upper_bound(net, region, query, local=local)
                assert r.upper >= exact, (net.activations, local)
                assert r.upper <= pure_product(net, query) * (1 + 1e-6)


def test_fixed_box_coordinates_are_not_varied():
    rng = np.random.default_rng(12)
    net = random_net(rng, [3, 5, 1])
    lo = np.array([-0.5, 0.2, -1.0])
    fixed = Box(lo, lo + np.array([1.0, 0.0, 1.0]))  # the middle coordinate is fixed
    q = Query.output(0, 1, 2)
    r = lipsdp_upper_bound(net, fixed, q)
    assert r.details["free_inputs"] == 2
    assert r.upper >= lipmip.lipschitz(net, fixed, q, method=EXACT).lower
    # the constant over the free coordinates is at most the one over all three: W1 with the column dropped
    dropped = Network([Layer(net.layers[0].W[:, [0, 2]], net.layers[0].b + net.layers[0].W[:, 1] * 0.2),
                       net.layers[1]])
    same = lipsdp_upper_bound(dropped, Box(lo[[0, 2]], lo[[0, 2]] + 1.0), q)
    assert r.upper == pytest.approx(same.upper, rel=1e-5)


def test_layer_variant_is_sound_and_no_tighter_than_neuron():
    for seed in (1, 7, 13, 20):
        net, region, query = random_case(seed)
        exact = lipmip.lipschitz(net, region, query, method=EXACT).lower
        neuron = lipsdp_upper_bound(net, region, query, local=False)
        layer = lipsdp_upper_bound(net, region, query, local=False, variant="layer")
        assert layer.upper >= exact
        assert layer.upper >= neuron.upper * (1 - 1e-6)


@pytest.mark.parametrize("seed", [1, 3, 7, 13, 20, 24, 31])
def test_barrier_solver_agrees_with_clarabel(seed):
    """lipmip's own barrier solver and Clarabel solve the same SDP: both
    certified values are sound and agree to 1e-6."""
    net, region, query = random_case(seed)
    exact = lipmip.lipschitz(net, region, query, method=EXACT).lower
    for local in (True, False):
        clarabel = lipsdp_upper_bound(net, region, query, local=local, solver="clarabel")
        barrier = lipsdp_upper_bound(net, region, query, local=local, solver="barrier")
        assert barrier.upper >= exact
        assert barrier.upper == pytest.approx(clarabel.upper, rel=1e-6, abs=1e-12)
        if barrier.details.get("solver"):
            assert barrier.details["solver"] == "barrier"


def test_barrier_time_limit_still_certifies():
    """Every barrier iterate is strictly feasible: stopped after its first
    Newton steps, it still gives a proven (looser) bound."""
    net = random_net(5, [3, 6, 6, 1])
    region, q = Ball([0.1, 0.2, -0.3], 1.0, 2), Query.output(0, 1, 2)
    full = lipsdp_upper_bound(net, region, q, local=False, solver="barrier")
    early = lipsdp_upper_bound(net, region, q, local=False, solver="barrier", time_limit=1e-9)
    assert early.details["solver_status"] == "user_limit"
    assert early.upper >= full.upper * (1 - 1e-9)
    assert early.upper >= lipmip.lipschitz(net, Box(np.full(3, -1e3), np.full(3, 1e3)), q, method=EXACT).lower


def test_scs_solver_is_sound():
    net, region, query = random_case(5)
    exact = lipmip.lipschitz(net, region, query, method=EXACT).lower
    r = lipsdp_upper_bound(net, region, query, local=False, solver="scs")
    assert r.details["solver"] == "scs"
    assert r.upper >= exact


def test_details_state_the_solver_caveat():
    net = random_net(3, [2, 4, 4, 1])
    r = lipsdp_upper_bound(net, Ball([0.1, -0.2], 1.0, 2), Query.output(0, 1, 2), local=False)
    d = r.details
    for key in ("solver", "solver_status", "solver_value", "certified_value", "certified_over_solver",
                "solve_seconds", "lmi_size", "scope", "caveat"):
        assert key in d, key
    assert d["certified_value"] == r.upper
    assert "tolerance" in d["caveat"] and "certified" in d["caveat"]


# ---------------------------------------------------------------------------- the certificate, not the solver
def test_a_wrong_solver_answer_does_not_become_the_bound(monkeypatch):
    """The solver claims ρ = 1e-6 with multipliers perturbed by 30%: the bound
    is computed from the multipliers and proven, so it stays above the exact
    value; the false claim shows only as solver_value."""
    net, region, query = random_case(7)
    exact = lipmip.lipschitz(net, region, query, method=EXACT).lower
    true_solve = bound.solve_sdp

    def lying_solver(*args, **kwargs):
        sol = true_solve(*args, **kwargs)
        rng = np.random.default_rng(0)
        return Solution(1e-6, sol.lam * rng.uniform(0.7, 1.3, sol.lam.size), sol.status, sol.solver, 0.0)

    monkeypatch.setattr(bound, "solve_sdp", lying_solver)
    r = lipsdp_upper_bound(net, region, query, local=False)
    assert r.upper >= exact
    assert r.details["solver_value"] < r.upper


def test_unprovable_multipliers_give_no_number(monkeypatch):
    """Multipliers for which the hidden block is not negative definite (all
    zero) cannot certify anything: upper is None, with the reason."""
    net = random_net(2, [2, 3, 1])

    def zero_solver(data, *args, **kwargs):
        return Solution(0.0, np.zeros(data.Z.shape[0]), "optimal", "clarabel", 0.0)

    monkeypatch.setattr(bound, "solve_sdp", zero_solver)
    r = lipsdp_upper_bound(net, Ball([0.0, 0.0], 1.0, 2), Query.output(0, 1, 2), local=False)
    assert r.upper is None
    assert r.status == "not_certified"
    assert "not negative definite" in r.details["reason"]


def test_solver_failure_is_a_lipmip_error(monkeypatch):
    def failing_solver(data, variant, solver, *args, **kwargs):
        return Solution(None, None, "solver_error", solver, 0.0, "numerical trouble")

    monkeypatch.setattr(bound, "solve_sdp", failing_solver)
    net = random_net(2, [2, 3, 1])
    with pytest.raises(SolverUnavailableError, match="numerical trouble"):
        lipsdp_upper_bound(net, Ball([0.0, 0.0], 1.0, 2), Query.output(0, 1, 2), local=False)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("query", [Query.vector(1), Query.vector("inf"), Query.scalar([1.0, 0.0], 1),
                                   Query.scalar([1.0, 0.0], "inf")])
def test_other_norms_are_refused(query):
    net = random_net(1, [2, 3, 2])
    with pytest.raises(InvalidQueryError, match="l2") as info:
        lipsdp_upper_bound(net, Ball([0.0, 0.0], 1.0, 2), query)
    assert "bab" in str(info.value)


def test_bad_options_are_refused():
    net = random_net(1, [2, 3, 1])
    region, q = Ball([0.0, 0.0], 1.0, 2), Query.output(0, 1, 2)
    for options in ({"variant": "diag"}, {"solver": "mosek"}, {"local": "yes"}, {"time_limit": -1}, {"solver": "highs"},
                    {"bounds": 42}, {"bounds": "exact"}):
        with pytest.raises(InvalidQueryError):
            lipsdp_upper_bound(net, region, q, **options)
    with pytest.raises(LipmipError):
        lipsdp_upper_bound("net", region, q)


def test_through_the_api():
    net = random_net(6, [2, 4, 1])
    region = Ball([0.3, -0.1], 0.5, 2)
    r = lipmip.lipschitz(net, region, Query.output(0, 1, 2), method="lipsdp")
    assert r.upper >= lipmip.lipschitz(net, region, Query.output(0, 1, 2), method=EXACT).lower


# ---------------------------------------------------------------------------- real networks
def test_digits_network_local():
    """The bundled digits network, ℓ2 ball of radius 0.05: LipSDP local is
    above the exact value (branch and bound) and below the norm product."""
    net = lipmip.examples.digits_network()
    x = lipmip.examples.digits_test_data()[0][0]
    region, q = Ball(x, 0.05, 2), Query.margin(7, 9, 10, 2)
    exact = lipmip.lipschitz(net, region, q, method="bab")
    r = lipsdp_upper_bound(net, region, q)
    assert r.upper >= exact.lower
    assert r.upper <= exact.upper * 1.01  # few unstable neurons: LipSDP is nearly exact here
    assert r.upper <= lipmip.lipschitz(net, region, q, method="naive").upper


def test_mnist_output_relu_network_local(shared_networks):
    net = lipmip.load(shared_networks / "mnist" / "mnist_relu_3_50.onnx")
    assert net.has_output_activation
    import csv

    with open(shared_networks / "mnist" / "mnist_test.csv") as f:
        row = next(csv.reader(f))
    x = np.array([float(v) for v in row[1:]]) / 255.0
    region, q = Ball(x, 0.02, 2), Query.margin(int(row[0]), (int(row[0]) + 1) % 10, 10, 2)
    r = lipsdp_upper_bound(net, region, q)
    assert r.upper is not None
    assert r.upper >= lipmip.lipschitz(net, region, q, method="sample").lower
    assert r.upper <= lipmip.lipschitz(net, region, q, method="naive").upper


def test_mnist_global_is_below_the_norm_product(shared_networks):
    """The global LMI of mnist_relu_3_50 (784-50-50-10, ReLU on the output too)
    has a dense block of 100 rows: the barrier solver takes it. LipSDP-Neuron
    never exceeds the norm product in exact arithmetic; a barrier run that
    stopped centring early once returned 147.7 here against a product of 38.5."""
    net = lipmip.load(shared_networks / "mnist" / "mnist_relu_3_50.onnx")
    region = Ball(np.zeros(net.input_dim), 1.0, 2)
    for q in (Query.vector(2), Query.margin(7, 9, 10, 2)):
        r = lipsdp_upper_bound(net, region, q, local=False)
        assert r.details["solver"] == "barrier" and r.details["solver_status"] == "optimal"
        naive = lipmip.lipschitz(net, region, q, method="naive").upper
        assert r.upper <= (naive if q.c is None else pure_product(net, q)) * (1 + 1e-6)
        assert r.upper >= lipmip.lipschitz(net, Ball(np.full(net.input_dim, 0.5), 0.5, 2), q, method="sample").lower


@pytest.mark.slow
def test_acas_global(shared_networks):
    """ACAS Xu 1_1, global 2→2 (an LMI of 305 rows): a few seconds with one BLAS thread."""
    net = lipmip.load(shared_networks / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx")
    q = Query.vector(2)
    r = lipsdp_upper_bound(net, Ball(np.zeros(5), 1.0, 2), q, local=False)
    assert r.details["solver_status"] == "optimal"
    assert r.upper <= lipmip.lipschitz(net, Ball(np.zeros(5), 1.0, 2), q, method="naive").upper
    assert r.upper >= lipmip.lipschitz(net, Box(np.full(5, -1.0), np.full(5, 1.0)), q, method="sample").lower
