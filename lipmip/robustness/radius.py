"""Certified robustness of one sample: the ε decision and the certified radius.

For an input ``x`` with prediction ``y`` (the float64 argmax of ``f(x)``,
ties to the smallest index) every margin ``m_j = f_y - f_j`` (``j != y``)
is bounded at ``x`` with a rigorous rounding error (so ``m_lo_j <= m_j(x) <=
m_hi_j`` in exact arithmetic). A radius ``r`` is *certified* when, for every
``j``, ``m_lo_j > U_j(r)·r`` (rounded up) with ``U_j(r)`` a certified upper
bound on the local Lipschitz constant of ``m_j`` over the ``r``-ball: then
``m_j(x') >= m_j(x) - U_j(r)‖x' - x‖ > 0`` for every ``x'`` of the ball, and
the exact prediction there is ``y``.

**The ε decision** (:meth:`SampleCertifier.decide`), cheapest first:

1. interval-Jacobian bounds for all margins at once: forward bounds over the
   ball once (``settings.bounds``), then one backward pass
   (:func:`lipmip.bounds.backward.gradient_bounds`, top-down; the bottom-up
   propagation as well when that leaves a margin open) with one row
   ``e_y - e_j`` per margin. Every margin certified: done (``"interval"``).
2. otherwise a PGD attack with dense sampling
   (:func:`lipmip.robustness.attack.find_adversarial`): a verified
   adversarial point ends it (``"attack"``, not certified). With
   ``method="interval"`` nothing more is tried (``"interval"``, not
   certified).
3. then per undecided margin, the hardest first (largest ``U_j·r/m_j``): a
   certified lower bound ``ℓ_j`` (method ``"sample"``); when ``m_hi_j <=
   ℓ_j·r`` no Lipschitz certificate can succeed and it ends (``"sample"``).
   Otherwise the exact rungs of the ladder (``"bab"`` then ``"mip"`` for
   ``method="auto"``, the named method otherwise, none for ``"interval"``)
   run through :func:`lipmip.lipschitz`, warm-started with the lower
   bound's witness, each stopped as soon as its bounds decide the margin;
   each margin may use all the time the sample has left (a rung that another
   follows gets half of it), since one margin that stays undecided ends the
   decision anyway (not certified).

**The radius** (:meth:`SampleCertifier.search_radius`): a geometric
bisection over ``r`` between a certified radius and a failing one, every
step deciding ``r`` with the interval-Jacobian bounds alone (top-down;
``radius_search="cheap"``, the default) or with the whole ladder
(``"exact"``). Every radius it reports was certified as above; the search
assumes that certification is monotone in ``r`` (true for the exact
constants, nearly so for the interval bounds), so the reported radius may be
below the largest certifiable one, never above it.

**The radius limit**: a certified lower bound ``ℓ`` of a margin ``m_j``
whose witness pair lies within distance ``ρ`` of ``x`` holds for every ball of
radius ``r >= ρ``; there ``m_j(x) <= ℓ·r`` as soon as ``r >= m_hi_j/ℓ``, so no
Lipschitz certificate reaches ``max(ρ, m_hi_j/ℓ)``. ``radius_limit`` is the
smallest such value over the lower bounds computed (those of the ε decision,
and one from the gradient at ``x`` of the margin with the smallest first-order
radius ``m_j/‖∇m_j(x)‖``). Always ``certified_radius < radius_limit``.

Inputs are not clipped to a valid range (e.g. pixels in [0, 1]): the ball is
the whole ball, a larger set than the clipped one, so every certificate also
holds for the clipped ball.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lipmip.api import METHODS, accepted_options, lipschitz
from lipmip.bounds import METHODS as BOUND_METHODS
from lipmip.bounds import compute
from lipmip.bounds.backward import gradient_bounds
from lipmip.bounds.base import Bounds
from lipmip.domains import Ball
from lipmip.errors import InvalidQueryError, LipmipError
from lipmip.network import Network
from lipmip.norms import dual_norm, norm_name, parse_norm, vector_norm
from lipmip.options import check_count
from lipmip.query import Query
from lipmip.result import Witness
from lipmip.robustness.attack import DISTANCE_SAFETY, Adversarial, find_adversarial, gradients
from lipmip.rounding import UNIT_ROUNDOFF
from lipmip.witness import forward_with_error, witness_from_point

__all__ = ["CertifySettings", "SampleCertifier", "certify_sample", "ladder", "RADIUS_SEARCHES", "LOWER_METHOD",
           "NO_UPPER_METHODS", "SAMPLE_FIELDS"]

LOWER_METHOD = "sample"              # the lower-bound method of the ε decision
NO_UPPER_METHODS = frozenset({"sample", "ascent", "clever"})  # certify no upper bound: cannot top a ladder
RADIUS_SEARCHES = ("cheap", "exact", "none")
EXACT_SHARE = 0.5                    # of a margin's time, for a rung that another rung follows (bab before the MIP)
MIN_RUNG_SECONDS = 0.05              # a rung with less time left than this is not started
_SAFETY = 1 + 1e-10                  # the norm of the backward bounds rounded up (as lipmip.estimate.interval_jacobian)
_RELATIVE_TOLERANCE = 1e-3           # the bisection stops when the bracket is this narrow (relative)
_MAX_GROWTH = 40                     # doublings tried above a certified radius

SAMPLE_FIELDS = ("record", "index", "label", "prediction", "correct", "runner_up", "margin", "certified",
                 "certified_radius", "radius_limit", "adversarial_distance", "lower", "upper", "method", "binding",
                 "stable_fraction", "unstable", "seconds", "error")


def ladder(method: str) -> tuple[str, ...]:
    """The bound methods tried on an undecided margin, cheapest first:
    ``"auto"`` is interval, then bab, then the MIP; ``"interval"`` never
    escalates; any other method of :data:`lipmip.api.METHODS` comes after
    the interval bounds."""
    if method == "auto":
        return ("interval", "bab", "mip")
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidQueryError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    if method in NO_UPPER_METHODS:
        raise InvalidQueryError(f"method {method!r} gives no certified upper bound and cannot certify; "
                                "use auto, interval, bab, mip or another upper-bound method")
    return ("interval",) if method == "interval" else ("interval", method)


@dataclass(frozen=True)
class CertifySettings:
    """Everything that decides a sample's record (besides the network and the point).

    ``eps`` the radius to decide; ``ball`` the norm (1, 2 or inf);
    ``method`` the top of the ladder (:func:`ladder`); ``time_limit``
    seconds per sample for the exact rungs (None: no limit); ``seed`` for the
    sampling and the attack; ``samples`` points per sampled lower bound;
    ``attack_steps`` / ``attack_restarts`` / ``attack_samples`` the PGD
    attack and the dense sampling; ``radius_search`` ``"cheap"``,
    ``"exact"`` or ``"none"`` (report ε or 0); ``radius_steps`` bound
    evaluations of the search; ``bounds`` the forward bound method of the
    interval rung."""

    eps: float
    ball: Any = math.inf
    method: str = "auto"
    time_limit: float | None = 60.0
    seed: int = 0
    samples: int = 200
    attack_steps: int = 50
    attack_restarts: int = 4
    attack_samples: int = 500
    radius_search: str = "cheap"
    radius_steps: int = 16
    bounds: str = "linear"
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            eps = float(self.eps)
        except (TypeError, ValueError):
            raise InvalidQueryError(f"eps must be a number, got {self.eps!r}") from None
        if isinstance(self.eps, bool) or not math.isfinite(eps) or eps <= 0:
            raise InvalidQueryError(f"eps must be finite and > 0, got {self.eps!r}")
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "ball", parse_norm(self.ball, InvalidQueryError, "ball norm"))
        ladder(self.method)
        if self.time_limit is not None:
            try:
                limit = float(self.time_limit)
            except (TypeError, ValueError):
                raise InvalidQueryError(f"time_limit must be a number of seconds or None, got {self.time_limit!r}") from None
            if isinstance(self.time_limit, bool) or not limit > 0 or math.isnan(limit):
                raise InvalidQueryError(f"time_limit must be > 0 seconds (or None for no limit), got {self.time_limit!r}")
            object.__setattr__(self, "time_limit", limit)
        for name, minimum in (("seed", 0), ("samples", 0), ("attack_steps", 0), ("attack_restarts", 0),
                              ("attack_samples", 0), ("radius_steps", 1)):
            object.__setattr__(self, name, check_count(getattr(self, name), name, minimum))
        if self.radius_search not in RADIUS_SEARCHES:
            raise InvalidQueryError(f"radius_search must be one of {', '.join(RADIUS_SEARCHES)}, got {self.radius_search!r}")
        if self.bounds not in BOUND_METHODS:
            raise InvalidQueryError(f"bounds must be one of {', '.join(BOUND_METHODS)}, got {self.bounds!r}")

    @property
    def ladder(self) -> tuple[str, ...]:
        return ladder(self.method)

    def to_dict(self) -> dict:
        """The settings as JSON values (the ball as ``"1"``, ``"2"`` or ``"inf"``)."""
        return {"eps": self.eps, "ball": norm_name(self.ball), "method": self.method, "time_limit": self.time_limit,
                "seed": self.seed, "samples": self.samples, "attack_steps": self.attack_steps,
                "attack_restarts": self.attack_restarts, "attack_samples": self.attack_samples,
                "radius_search": self.radius_search, "radius_steps": self.radius_steps, "bounds": self.bounds}


# ---------------------------------------------------------------------------- directed rounding
def _mul_up(a: np.ndarray | float, b: float) -> np.ndarray:
    """``a·b`` rounded up (``a, b >= 0``): at least the exact product."""
    return np.nextafter(np.asarray(a, dtype=np.float64) * b, np.inf)


def _mul_down(a: np.ndarray | float, b: float) -> np.ndarray:
    """``a·b`` rounded down (``a, b >= 0``): at most the exact product."""
    return np.maximum(np.nextafter(np.asarray(a, dtype=np.float64) * b, -np.inf), 0.0)


def _div_up(a: float, b: float) -> float:
    return float(np.nextafter(a / b, np.inf))


# ---------------------------------------------------------------------------- one decision
@dataclass
class Decision:
    """The outcome of deciding one radius ``r``: ``certified``; ``method``
    (what settled it: the last rung needed to certify, or the method whose
    bound, attack or margin showed it cannot be); ``binding`` (the index into
    ``SampleCertifier.others`` of the margin that decided: the tightest when
    certified, the failing one otherwise); per margin the best certified
    upper and lower bounds over the ``r``-ball (``-1`` for a lower bound not
    computed); the forward bounds; a verified adversarial point if one was
    found."""

    radius: float
    certified: bool
    method: str | None
    binding: int
    upper: np.ndarray
    lower: np.ndarray
    forward: Bounds
    adversarial: Adversarial | None = None


class SampleCertifier:
    """Certifies one point; see the module docstring for what is proven."""

    def __init__(self, net: Network, x: np.ndarray, settings: CertifySettings, seed: list[int]):
        self.net = net
        self.x = np.asarray(x, dtype=np.float64).reshape(-1)
        self.settings = settings
        self.p = settings.ball
        self.seed = list(seed)
        self.deadline = None if settings.time_limit is None else time.perf_counter() + settings.time_limit
        m = net.output_dim
        if m < 2:
            raise InvalidQueryError(f"certifying a prediction needs a classifier with at least 2 outputs; this network has {m}")
        self.outputs = net(self.x)
        self.prediction = int(np.argmax(self.outputs))
        self.others = np.array([j for j in range(m) if j != self.prediction], dtype=np.int64)
        out, err = forward_with_error(net, self.x)
        nominal = out[self.prediction] - out[self.others]
        # exact margin within (err_y + err_j) of the computed difference, which itself rounds by <= u|nominal|
        pad = (err[self.prediction] + err[self.others]) * (1 + 4 * UNIT_ROUNDOFF) + 2 * UNIT_ROUNDOFF * np.abs(nominal) + 1e-300
        self.margin_lower = np.nextafter(nominal - pad, -np.inf)
        self.margin_upper = np.nextafter(nominal + pad, np.inf)
        self.C = np.zeros((self.others.size, m))
        self.C[:, self.prediction] = 1.0
        self.C[np.arange(self.others.size), self.others] = -1.0
        self.evidence: list[tuple[float, int, float]] = []  # (ρ, margin, ℓ): ℓ bounds L of margin over balls of radius >= ρ
        self._calls = 0

    # ------------------------------------------------------------------ pieces
    def runner_up(self) -> int | None:
        if self.others.size == 0:
            return None
        return int(self.others[int(np.argmax(self.outputs[self.others]))])

    def _query(self, k: int) -> Query:
        return Query.margin(self.prediction, int(self.others[k]), self.net.output_dim, self.p)

    def cheap_uppers(self, r: float, *, forward: Bounds | None = None, bottom_up: bool = False) -> tuple[np.ndarray, Bounds]:
        """Certified upper bounds on every margin's local Lipschitz constant over
        the ``r``-ball (interval Jacobian, one backward pass for all margins;
        ``bottom_up`` adds the second, slower propagation of
        :func:`~lipmip.bounds.backward.gradient_bounds`); ``forward``: the
        forward bounds over that ball, when already computed."""
        if forward is None:
            forward = compute(self.net, Ball(self.x, r, self.p), self.settings.bounds)
        B = gradient_bounds(forward, self.C, bottom_up=bottom_up).input_abs
        values = vector_norm(B, dual_norm(self.p), axis=1)
        return values * _SAFETY + np.where(values > 0, 1e-300, 0.0), forward

    def _certifies(self, upper: np.ndarray, r: float) -> np.ndarray:
        return self.margin_lower > _mul_up(upper, r)

    def _refutes(self, lower: np.ndarray, r: float) -> np.ndarray:
        """Margins whose lower bound shows that no Lipschitz certificate reaches ``r``."""
        return (lower >= 0) & (self.margin_upper <= _mul_down(np.maximum(lower, 0.0), r))

    def _extent(self, witness: Witness) -> float:
        """A radius (rounded up) of a ball around ``x`` that holds both witness points."""
        return max(float(vector_norm(witness.a - self.x, self.p)), float(vector_norm(witness.b - self.x, self.p))) \
            * DISTANCE_SAFETY + 1e-300

    def _note(self, k: int, witness: Witness | None) -> None:
        if witness is not None and witness.value > 0:
            self.evidence.append((self._extent(witness), k, float(witness.value)))

    def _left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.perf_counter()

    def _next_seed(self) -> list[int]:
        self._calls += 1
        return [*self.seed, self._calls]

    # ------------------------------------------------------------------ the decision
    def decide(self, r: float, rungs: tuple[str, ...], *, attack: bool = True) -> Decision:
        """Decide whether radius ``r`` is certified (see the module docstring)."""
        upper, forward = self.cheap_uppers(r)
        if not np.all(self._certifies(upper, r)):
            upper = np.minimum(upper, self.cheap_uppers(r, forward=forward, bottom_up=True)[0])
        lower = np.full(self.others.size, -1.0)
        done = self._certifies(upper, r)
        if np.all(done):
            return Decision(r, True, "interval", self._tightest(upper, r), upper, lower, forward)
        hopeless = np.flatnonzero(self.margin_lower <= 0)
        if hopeless.size:  # a tie at x within rounding: no radius can be certified
            return Decision(r, False, "margin", int(hopeless[0]), upper, lower, forward)
        if attack:
            s = self.settings
            found = find_adversarial(self.net, self.x, self.prediction, r, self.p, steps=s.attack_steps,
                                     restarts=s.attack_restarts, samples=s.attack_samples, seed=self._next_seed())
            if found is not None:
                k = int(np.flatnonzero(self.others == found.prediction)[0])
                return Decision(r, False, "attack", k, upper, lower, forward, found)
        undecided = [int(k) for k in np.argsort(-_mul_up(upper, r) / self.margin_lower, kind="stable") if not done[k]]
        if len(rungs) == 1:  # nothing to escalate to: the hardest margin stays open
            return Decision(r, False, rungs[0], undecided[0], upper, lower, forward)
        used = 0
        for k in undecided:
            region = Ball(self.x, r, self.p)
            query = self._query(k)
            low = lipschitz(self.net, region, query, method=LOWER_METHOD,
                            **self._options(LOWER_METHOD, samples=self.settings.samples, seed=self.settings.seed))
            lower[k] = low.lower or 0.0
            witness = low.witness
            self._note(k, witness)
            if self._refutes(lower, r)[k]:
                return Decision(r, False, LOWER_METHOD, k, upper, lower, forward)
            method = "interval"
            for level, rung in enumerate(rungs[1:], start=1):
                budget = self._left()
                if budget is not None:
                    if level < len(rungs) - 1:
                        budget *= EXACT_SHARE
                    if budget < MIN_RUNG_SECONDS:
                        break
                result = self._exact(rung, region, query, k, r, budget, witness)
                method = rung
                used = max(used, level)
                if result.upper is not None:
                    upper[k] = min(upper[k], result.upper)
                if result.lower is not None and result.lower > lower[k]:
                    lower[k] = result.lower
                    witness = result.witness
                    self._note(k, witness)
                if self._certifies(upper, r)[k]:
                    break
                if self._refutes(lower, r)[k]:
                    return Decision(r, False, rung, k, upper, lower, forward)
            if not self._certifies(upper, r)[k]:
                return Decision(r, False, method, k, upper, lower, forward)
        return Decision(r, True, rungs[used], self._tightest(upper, r), upper, lower, forward)

    def _tightest(self, upper: np.ndarray, r: float) -> int:
        return int(np.argmax(_mul_up(upper, r) / self.margin_lower))

    def _options(self, method: str, **given: Any) -> dict:
        accepted = set(accepted_options(method))
        return {k: v for k, v in given.items() if k in accepted}

    def _exact(self, rung: str, region: Ball, query: Query, k: int, r: float, budget: float | None,
               witness: Witness | None) -> Any:
        """One exact rung on margin ``k``, stopped (when the method takes
        ``stop``) as soon as its running bounds decide the margin."""
        state: dict[str, float | None] = {"incumbent": None, "bound": None}
        m_lo, m_hi = float(self.margin_lower[k]), float(self.margin_upper[k])

        def progress(seconds: float, incumbent: float | None, bound: float | None, **_: Any) -> None:
            state["incumbent"], state["bound"] = incumbent, bound

        def decided() -> bool:
            incumbent, bound = state["incumbent"], state["bound"]
            if bound is not None and math.isfinite(bound) and m_lo > float(_mul_up(bound, r)):
                return True
            return incumbent is not None and m_hi <= float(_mul_down(incumbent, r))

        options = self._options(rung, time_limit=budget, seed=self.settings.seed, samples=self.settings.samples,
                                incumbent=witness, stop=decided, progress=progress, threads=1)
        if "stop" not in options:
            options.pop("progress", None)
        return lipschitz(self.net, region, query, method=rung, **options)

    # ------------------------------------------------------------------ radius
    def first_order_evidence(self) -> None:
        """A lower bound for the margin with the smallest first-order radius
        ``m_j / ‖∇m_j(x)‖_*``, over the ball of that radius (one witness)."""
        if self.others.size == 0:
            return
        g = vector_norm(gradients(self.net, self.x, self.C), dual_norm(self.p), axis=1)
        nominal = self.outputs[self.prediction] - self.outputs[self.others]
        usable = (g > 0) & (nominal > 0)
        if not np.any(usable):
            return
        ratio = np.where(usable, nominal / np.where(usable, g, 1.0), np.inf)
        k = int(np.argmin(ratio))
        if not (math.isfinite(ratio[k]) and ratio[k] > 0):
            return
        self._note(k, witness_from_point(self.net, self._query(k), Ball(self.x, float(ratio[k]), self.p), self.x))

    def radius_limit(self) -> float | None:
        """The smallest ``max(ρ, m_hi/ℓ)`` over the lower bounds found (None: none)."""
        limits = [max(rho, _div_up(float(self.margin_upper[k]), ell)) for rho, k, ell in self.evidence
                  if ell > 0 and self.margin_upper[k] > 0]
        return min(limits) if limits else None

    def search_radius(self, decision: Decision) -> tuple[float, Adversarial | None]:
        """The largest radius certified by the search (0.0 when none) and the
        closest verified adversarial point met on the way."""
        eps = decision.radius
        adversarial = decision.adversarial
        if self.others.size == 0:
            return 0.0, None
        if np.any(self.margin_lower <= 0):
            return 0.0, adversarial
        mode = self.settings.radius_search
        if mode == "none":
            return (eps if decision.certified else 0.0), adversarial
        steps = self.settings.radius_steps

        def certifies(r: float) -> bool:
            nonlocal steps, adversarial
            steps -= 1
            if mode == "cheap":
                return bool(np.all(self._certifies(self.cheap_uppers(r)[0], r)))
            outcome = self.decide(r, self.settings.ladder)
            if outcome.adversarial is not None and (adversarial is None or outcome.adversarial.distance < adversarial.distance):
                adversarial = outcome.adversarial
            return outcome.certified

        lo = eps if decision.certified else 0.0
        hi = None if decision.certified else eps
        limit = self.radius_limit()
        if limit is not None:
            hi = limit if hi is None else min(hi, limit)
        if adversarial is not None:
            hi = adversarial.distance if hi is None else min(hi, adversarial.distance)
        if hi is not None and hi <= lo:
            return lo, adversarial
        # the first guess: the radius the ε-ball's upper bounds would certify if they held at every radius
        guess = float(np.min(self.margin_lower / np.maximum(decision.upper, 1e-300))) * (1 - 1e-9)
        if hi is None:  # grow above the certified ε until a radius fails
            r = max(guess, 2 * lo)
            for _ in range(_MAX_GROWTH):
                if steps <= 0:
                    return lo, adversarial
                if not certifies(r):
                    hi = r
                    break
                lo, r = r, 2 * r
            else:
                return lo, adversarial
        if lo == 0.0:  # shrink below the failing radius until one is certified
            r = guess if 0 < guess < hi else hi / 2
            while steps > 0:
                if certifies(r):
                    lo = r
                    break
                hi, r = r, r / 8
            if lo == 0.0:
                return 0.0, adversarial
        while steps > 0 and hi > lo * (1 + _RELATIVE_TOLERANCE):
            mid = math.sqrt(lo * hi)
            if certifies(mid):
                lo = mid
            else:
                hi = mid
        return lo, adversarial

    # ------------------------------------------------------------------ the whole sample
    def run(self, label: int | None) -> dict:
        """The sample's record (every field of the results schema but ``seconds``)."""
        s = self.settings
        correct = None if label is None else self.prediction == int(label)
        runner_up = self.runner_up()
        record: dict[str, Any] = {
            "record": "sample", "index": None, "label": None if label is None else int(label),
            "prediction": self.prediction, "correct": correct, "runner_up": runner_up,
            "margin": None if runner_up is None else float(self.outputs[self.prediction] - self.outputs[runner_up]),
            "certified": False, "certified_radius": 0.0, "radius_limit": None, "adversarial_distance": None,
            "lower": None, "upper": None, "method": None, "binding": None, "stable_fraction": None, "unstable": None,
            "seconds": None, "error": None,
        }
        if correct is False:
            forward = compute(self.net, Ball(self.x, s.eps, self.p), s.bounds)
            record.update(stable_fraction=forward.stable_fraction, unstable=forward.num_unstable)
            return record
        decision = self.decide(s.eps, s.ladder)
        self.first_order_evidence()
        k = decision.binding
        if decision.lower[k] < 0:  # no lower bound computed for the binding margin: one witness from the centre
            inside = [ell for rho, j, ell in self.evidence if j == k and rho <= s.eps]
            if inside:
                decision.lower[k] = max(inside)
            else:
                witness = witness_from_point(self.net, self._query(k), Ball(self.x, s.eps, self.p), self.x)
                self._note(k, witness)
                decision.lower[k] = 0.0 if witness is None else witness.value
        radius, adversarial = self.search_radius(decision)  # >= ε when ε is certified, < ε otherwise
        limit = self.radius_limit()
        record.update(
            certified=bool(decision.certified),
            certified_radius=float(radius),
            radius_limit=limit,
            adversarial_distance=None if adversarial is None else adversarial.distance,
            lower=float(decision.lower[k]),
            upper=float(decision.upper[k]),
            method=decision.method,
            binding=int(self.others[k]),
            stable_fraction=decision.forward.stable_fraction,
            unstable=decision.forward.num_unstable,
        )
        return record


def certify_sample(net: Network, x: Any, label: int | None, settings: CertifySettings, index: int = 0) -> dict:
    """The results record of one sample (row ``index`` of the data set):
    every field of the results schema, ``seconds`` the wall time spent. A
    :class:`~lipmip.errors.LipmipError` raised while certifying it becomes the
    record's ``error`` (one line; the result fields are then null and
    ``certified`` is false). Deterministic for given arguments unless a time
    limit cuts an exact method short."""
    start = time.perf_counter()
    try:
        record = SampleCertifier(net, x, settings, seed=[settings.seed, int(index)]).run(label)
    except LipmipError as exc:
        record = {name: None for name in SAMPLE_FIELDS}
        message = " ".join(str(exc).split()) or type(exc).__name__
        record.update(record="sample", label=None if label is None else int(label), certified=False,
                      error=f"{type(exc).__name__}: {message}")
    record["index"] = int(index)
    record["seconds"] = time.perf_counter() - start
    return {name: record[name] for name in SAMPLE_FIELDS}
