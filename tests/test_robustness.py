"""Certified robustness of single samples (``lipmip.robustness.radius``, ``.attack``) against oracles.

The oracles never come from the code under test:

* the exact local Lipschitz constant of every margin, by activation-region enumeration
  (``method="enumerate"``): a certified radius must satisfy the Lipschitz condition with the exact
  constants; at ``radius_limit`` it must fail for some margin; an exact ladder (bab, no time limit)
  must certify whenever the exact constants leave slack, and nothing may be certified when they
  show no Lipschitz certificate exists;
* attacks: PGD with many restarts plus dense sampling (other seeds than the code's own), and
  plain float64 predictions at sampled points of the ball, never change the class of a certified
  sample; a sample with an adversarial point is never certified;
* a linear classifier, whose robust radius is known in closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from nets import random_net

import lipmip
from lipmip import Ball, Network, Query
from lipmip.errors import InvalidQueryError
from lipmip.norms import dual_norm, vector_norm
from lipmip.robustness.attack import _project, find_adversarial, predictions
from lipmip.robustness.radius import SAMPLE_FIELDS, CertifySettings, certify_sample, ladder

INF = math.inf


def exact_constant(net: Network, x: np.ndarray, r: float, p: float, i: int, j: int) -> float:
    res = lipmip.lipschitz(net, Ball(x, r, p), Query.margin(i, j, net.output_dim, p), method="enumerate",
                           max_regions=None)
    assert res.status == "exact"
    return res.upper


def margins(net: Network, x: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    out = net(x)
    y = int(np.argmax(out))
    others = np.array([j for j in range(net.output_dim) if j != y])
    return y, others, out[y] - out[others]


def strong_attack(net: Network, x: np.ndarray, y: int, r: float, p: float, seed: int):
    return find_adversarial(net, x, y, r, p, steps=100, restarts=10, samples=3000, seed=[99, seed])


def dense_predictions_agree(net: Network, x: np.ndarray, y: int, r: float, p: float, seed: int) -> bool:
    rng = np.random.default_rng(seed)
    ball = Ball(x, r * (1 - 1e-9), p)
    points = ball.sample(4000, rng)
    if p == INF:
        points = np.vstack([points, x + r * (1 - 1e-9) * rng.choice([-1.0, 1.0], size=(4000, x.size))])
    return bool(np.all(predictions(net, points) == y))


def first_order_radius(net: Network, x: np.ndarray, p: float) -> float:
    """``min_j m_j(x) / ‖∇m_j(x)‖_*``: the scale of radii where outcomes change."""
    y, others, m = margins(net, x)
    J = net.jacobian(x)
    return float(min(m[k] / vector_norm(J[y] - J[j], dual_norm(p)) for k, j in enumerate(others)))


# (network seed, widths, ball): small enough for the enumeration oracle at every radius met
CASES = [
    (1, (3, 8, 8, 3), INF),
    (2, (3, 6, 6, 3), 2.0),
    (3, (3, 10, 3), 1.0),
    (4, (2, 6, 6, 6, 3), INF),
    (5, (2, 8, 8, 4), 2.0),
]


@pytest.mark.parametrize("seed, widths, p", CASES)
def test_radius_and_decision_against_exact_constants(seed, widths, p):
    net = random_net(seed, widths)
    rng = np.random.default_rng(100 + seed)
    decided = {True: 0, False: 0}
    for point in range(3):
        x = rng.normal(size=widths[0])
        y, others, m = margins(net, x)
        for t in (0.4, 1.3):
            eps = t * first_order_radius(net, x, p)
            rec = certify_sample(net, x, None, CertifySettings(eps=eps, ball=p, method="bab", time_limit=None), point)
            assert rec["error"] is None and rec["prediction"] == y
            exact_eps = np.array([exact_constant(net, x, eps, p, y, int(j)) for j in others])
            lipschitz_certifiable = np.all(m > exact_eps * eps * (1 + 1e-6))
            lipschitz_impossible = np.any(m < exact_eps * eps * (1 - 1e-6))
            if lipschitz_certifiable:  # the exact ladder must find the certificate
                assert rec["certified"], (rec, m, exact_eps * eps)
            if lipschitz_impossible:  # no sound upper bound can certify
                assert not rec["certified"], (rec, m, exact_eps * eps)
            decided[rec["certified"]] += 1
            # lower/upper bracket the exact constant of the deciding margin over the eps-ball
            k = int(np.flatnonzero(others == rec["binding"])[0])
            assert rec["lower"] <= exact_eps[k] * (1 + 1e-9) + 1e-12
            assert exact_eps[k] <= rec["upper"] * (1 + 1e-9)
            # the certified radius satisfies the Lipschitz condition with the exact constants
            rc = rec["certified_radius"]
            assert (rc >= eps) == rec["certified"]
            if rc > 0:
                exact_rc = np.array([exact_constant(net, x, rc, p, y, int(j)) for j in others])
                assert np.all(m > exact_rc * rc * (1 - 1e-9)), (rc, m, exact_rc * rc)
            # no Lipschitz certificate reaches radius_limit
            limit = rec["radius_limit"]
            assert limit is not None and rc < limit
            exact_limit = np.array([exact_constant(net, x, limit, p, y, int(j)) for j in others])
            assert np.any(m <= exact_limit * limit * (1 + 1e-9)), (limit, m, exact_limit * limit)
            # the adversarial distance is a true limit of robustness
            if rec["adversarial_distance"] is not None:
                assert rc < rec["adversarial_distance"] <= eps * (1 + 1e-9)
    assert decided[True] and decided[False]  # both outcomes occur in every case


@pytest.mark.parametrize("seed, widths, p", CASES)
def test_certified_samples_resist_attacks(seed, widths, p):
    net = random_net(seed, widths)
    rng = np.random.default_rng(200 + seed)
    seen = {True: 0, False: 0}
    for point in range(4):
        x = rng.normal(size=widths[0])
        for t in (0.3, 1.0, 2.0):
            eps = t * first_order_radius(net, x, p)
            rec = certify_sample(net, x, None, CertifySettings(eps=eps, ball=p, method="auto", time_limit=20), point)
            y = rec["prediction"]
            found = strong_attack(net, x, y, eps, p, seed=point)
            if rec["certified"]:
                assert found is None, rec
                assert dense_predictions_agree(net, x, y, rec["certified_radius"], p, seed=point)
            if found is not None:
                assert not rec["certified"]
                assert np.argmax(net(found.point)) != y
                assert vector_norm(found.point - x, p) <= eps
                assert rec["certified_radius"] < found.distance
            seen[rec["certified"]] += 1
    assert seen[True] and seen[False]


def test_digits_network_certified_samples_have_no_adversarial_example():
    net = lipmip.examples.digits_network()
    X, y = lipmip.examples.digits_test_data()
    outcomes = {"certified": 0, "adversarial": 0, "misclassified": 0}
    for i in range(24):
        rec = certify_sample(net, X[i], int(y[i]), CertifySettings(eps=0.03, method="interval"), i)
        assert rec["correct"] == (rec["prediction"] == y[i])
        found = strong_attack(net, X[i], rec["prediction"], 0.03, INF, seed=i)
        if rec["certified"]:
            outcomes["certified"] += 1
            assert found is None
            assert dense_predictions_agree(net, X[i], rec["prediction"], 0.03, INF, seed=i)
        if found is not None:
            outcomes["adversarial"] += 1
            assert not rec["certified"]
        if not rec["correct"]:
            outcomes["misclassified"] += 1
            assert not rec["certified"] and rec["certified_radius"] == 0.0
    assert outcomes["certified"] >= 5 and outcomes["adversarial"] >= 1


def test_linear_classifier_radius_is_the_distance_to_the_boundary():
    # f(x) = W x + b, no ReLU: the margins are affine, their Lipschitz constants exact
    rng = np.random.default_rng(7)
    W, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    net = Network.from_params([(W, b)], ["identity"])
    x = rng.normal(size=5)
    for p in (INF, 2.0, 1.0):
        y, others, m = margins(net, x)
        true_radius = min(m[k] / vector_norm(W[y] - W[j], dual_norm(p)) for k, j in enumerate(others))
        rec = certify_sample(net, x, y, CertifySettings(eps=0.5 * true_radius, ball=p), 0)
        assert rec["certified"] and rec["method"] == "interval"
        assert true_radius * (1 - 2e-3) <= rec["certified_radius"] < true_radius
        assert true_radius <= rec["radius_limit"] <= true_radius * (1 + 1e-6)
        rec = certify_sample(net, x, y, CertifySettings(eps=1.5 * true_radius, ball=p), 0)
        assert not rec["certified"] and rec["method"] == "attack"
        assert true_radius <= rec["adversarial_distance"] <= 1.5 * true_radius


def test_misclassified_sample_is_never_certified():
    net = lipmip.examples.digits_network()
    X, y = lipmip.examples.digits_test_data()
    i = 0
    wrong = (int(np.argmax(net(X[i]))) + 1) % 10
    rec = certify_sample(net, X[i], wrong, CertifySettings(eps=1e-4), i)
    assert rec["correct"] is False and rec["certified"] is False and rec["certified_radius"] == 0.0
    assert list(rec) == list(SAMPLE_FIELDS) and rec["error"] is None


def test_records_are_deterministic():
    net = random_net(11, (4, 10, 10, 3))
    x = np.random.default_rng(3).normal(size=4)
    settings = CertifySettings(eps=0.3, method="auto", time_limit=None)
    a, b = (certify_sample(net, x, None, settings, 5) for _ in range(2))
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_ladders_and_bad_settings():
    assert ladder("auto") == ("interval", "bab", "mip")
    assert ladder("interval") == ("interval",)
    assert ladder("mip") == ("interval", "mip")
    with pytest.raises(InvalidQueryError, match="no certified upper bound"):
        ladder("sample")
    with pytest.raises(InvalidQueryError, match="unknown method"):
        CertifySettings(eps=0.1, method="magic")
    for bad in (0, -1.0, math.nan, math.inf, "x"):
        with pytest.raises(InvalidQueryError, match="eps"):
            CertifySettings(eps=bad)
    with pytest.raises(InvalidQueryError, match="ball norm"):
        CertifySettings(eps=0.1, ball=3)
    with pytest.raises(InvalidQueryError, match="time_limit"):
        CertifySettings(eps=0.1, time_limit=0)
    with pytest.raises(InvalidQueryError, match="radius_search"):
        CertifySettings(eps=0.1, radius_search="fast")


def test_solver_errors_become_the_record_error(monkeypatch):
    import lipmip.robustness.radius as radius_module
    from lipmip.errors import SolverUnavailableError

    def refuse(*args, **kwargs):
        raise SolverUnavailableError("no solver here\nsecond line")

    monkeypatch.setattr(radius_module, "lipschitz", refuse)
    net = random_net(1, (3, 8, 8, 3))
    rec = certify_sample(net, np.zeros(3), None, CertifySettings(eps=5.0, attack_steps=0, attack_samples=0), 4)
    assert rec["index"] == 4 and rec["certified"] is False and rec["certified_radius"] is None
    assert rec["error"] == "SolverUnavailableError: no solver here second line"


@pytest.mark.parametrize("p", [INF, 2.0, 1.0])
def test_projection_onto_the_ball(p):
    rng = np.random.default_rng(5)
    delta = rng.normal(size=(20, 7)) * 3
    proj = _project(delta, 0.7, p)
    assert np.all(vector_norm(proj, p, axis=1) <= 0.7 * (1 + 1e-12))
    inside = rng.normal(size=(5, 7)) * 0.01
    assert np.allclose(_project(inside, 0.7, p), inside)
    if p == 1.0:  # the Euclidean projection is the closest point: no random point of the ball is closer
        for row, pr in zip(delta, proj):
            others = Ball(np.zeros(7), 0.7, 1.0).sample(2000, rng)
            assert np.linalg.norm(row - pr) <= np.linalg.norm(row - others, axis=1).min() + 1e-12
