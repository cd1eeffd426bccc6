"""The numbers of a robustness report, computed from :class:`Results` alone.

Every fraction is over the *finished* samples (``N``, errored ones
included): an errored sample counts as neither correct nor certified, so an
error can only lower the reported accuracies, never raise them. Without
labels, "correct" is replaced by "has a prediction" and certified accuracy
becomes the fraction of samples whose prediction is proven unchanged.

A sample is certified at radius ``r`` when ``certified_radius >= r``, or when
it is certified at ``eps`` and ``r <= eps`` (robustness at ``eps`` implies it
at every smaller radius); both are proofs. At ``r = 0`` every correctly
classified sample counts. The upper curve counts the samples
still eligible for which no adversarial input was found at distance ``<= r``:
the true robust accuracy lies between the two curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median
from typing import Callable, Sequence

import numpy as np

from lipmip.reporting.load import Results, SampleRecord

__all__ = [
    "Summary",
    "Headline",
    "ClassRow",
    "MethodRow",
    "RadiusRow",
    "StabilityBin",
    "summarize",
    "certified_at",
    "not_refuted_at",
    "certified_curve",
    "not_refuted_curve",
    "outcome",
    "has_labels",
    "OUTCOMES",
]

# what happened to one sample, in the order the report lists them
OUTCOMES = ("certified", "not certified", "misclassified", "error")
# the method column of samples that needed no bound (e.g. misclassified ones)
NO_METHOD = "(no bound computed)"


@dataclass(frozen=True)
class Headline:
    """The top-line counts; fractions are over ``finished`` (None when it is 0)."""

    eps: float
    finished: int
    expected: int | None
    missing: int | None
    errored: int
    labelled: bool
    correct: int
    certified: int
    attacked: int  # eligible samples with an adversarial input found within eps
    clean_accuracy: float | None
    certified_accuracy: float | None
    robust_upper: float | None  # fraction not refuted at eps (None when no sample carries attack results)


@dataclass(frozen=True)
class ClassRow:
    label: str
    samples: int
    errored: int
    correct: int
    certified: int
    clean_accuracy: float
    certified_accuracy: float
    median_radius: float | None


@dataclass(frozen=True)
class MethodRow:
    method: str
    samples: int
    certified: int
    total_seconds: float
    median_seconds: float | None


@dataclass(frozen=True)
class RadiusRow:
    factor: float  # radius / eps
    radius: float
    certified: int
    certified_fraction: float
    not_refuted: int | None
    not_refuted_fraction: float | None


@dataclass(frozen=True)
class StabilityBin:
    low: float
    high: float
    samples: int
    certified: int
    certified_fraction: float


@dataclass(frozen=True)
class Summary:
    """Everything a report shows, as plain numbers (see the module docstring
    for the definitions)."""

    results: Results
    headline: Headline
    radius_table: tuple[RadiusRow, ...]
    radius_stats: dict[str, float | int | None]
    classes: tuple[ClassRow, ...]
    class_key: str  # "label" or "prediction"
    methods: tuple[MethodRow, ...]
    lipschitz_stats: dict[str, float | int | None]
    stability_stats: dict[str, float | int | None]
    stability_bins: tuple[StabilityBin, ...]
    time_stats: dict[str, float | int | None]
    slowest: tuple[SampleRecord, ...]
    errors: tuple[SampleRecord, ...]
    has_attacks: bool
    notes: tuple[str, ...]


# ---------------------------------------------------------------------------- per-sample predicates
def has_labels(samples: Sequence[SampleRecord]) -> bool:
    """Whether the data has labels (assumed while no sample has finished)."""
    return not samples or any(s.label is not None for s in samples)


def _eligible(s: SampleRecord, labelled: bool) -> bool:
    """Correctly classified (with labels) or at least predicted (without);
    never an errored sample."""
    if s.errored:
        return False
    return s.correct is True if labelled else s.prediction is not None


def certified_at(s: SampleRecord, r: float, eps: float, labelled: bool) -> bool:
    """Whether ``s`` is proven robust at radius ``r`` (see the module docstring)."""
    if not _eligible(s, labelled):
        return False
    if r <= 0 or (s.certified and r <= eps):  # radius 0: correct classification alone
        return True
    return s.certified_radius is not None and s.certified_radius >= r


def outcome(s: SampleRecord, eps: float, labelled: bool) -> str:
    """One of :data:`OUTCOMES`: errored, misclassified (or no prediction),
    certified at ``eps``, or not certified."""
    if s.errored:
        return "error"
    if not _eligible(s, labelled):
        return "misclassified"
    return "certified" if certified_at(s, eps, eps, labelled) else "not certified"


def not_refuted_at(s: SampleRecord, r: float, labelled: bool) -> bool:
    """Eligible, and no adversarial input was found at distance ``<= r``."""
    if not _eligible(s, labelled):
        return False
    return s.adversarial_distance is None or s.adversarial_distance > r


def _fraction(k: int, n: int) -> float | None:
    return k / n if n else None


def _median(values: Sequence[float]) -> float | None:
    return float(median(values)) if values else None


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile by linear interpolation between order statistics."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _values(samples: Sequence[SampleRecord], name: str) -> list[float]:
    """The non-null values of field ``name``."""
    return [v for v in (getattr(s, name) for s in samples) if v is not None]


def _count(samples: Sequence[SampleRecord], test: Callable[[SampleRecord], bool]) -> int:
    return sum(1 for s in samples if test(s))


# ---------------------------------------------------------------------------- sections
def _headline(results: Results, labelled: bool, has_attacks: bool) -> Headline:
    samples, eps, n = results.samples, results.header.eps, results.finished
    correct = _count(samples, lambda s: _eligible(s, labelled))
    certified = _count(samples, lambda s: certified_at(s, eps, eps, labelled))
    attacked = _count(samples, lambda s: _eligible(s, labelled) and not not_refuted_at(s, eps, labelled))
    return Headline(
        eps=eps, finished=n, expected=results.header.rows, missing=results.missing,
        errored=_count(samples, lambda s: s.errored), labelled=labelled, correct=correct, certified=certified,
        attacked=attacked, clean_accuracy=_fraction(correct, n), certified_accuracy=_fraction(certified, n),
        robust_upper=_fraction(correct - attacked, n) if has_attacks else None,
    )


def _radius_table(results: Results, labelled: bool, has_attacks: bool) -> tuple[RadiusRow, ...]:
    eps, n = results.header.eps, results.finished
    rows = []
    for factor in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0):
        r = eps * factor
        k = _count(results.samples, lambda s: certified_at(s, r, eps, labelled))
        up = _count(results.samples, lambda s: not_refuted_at(s, r, labelled)) if has_attacks else None
        rows.append(RadiusRow(factor=factor, radius=r, certified=k, certified_fraction=_fraction(k, n) or 0.0, not_refuted=up,
                              not_refuted_fraction=None if up is None else _fraction(up, n)))
    return tuple(rows)


def _radius_stats(results: Results, labelled: bool) -> dict[str, float | int | None]:
    eligible = [s for s in results.samples if _eligible(s, labelled)]
    radii = _values(eligible, "certified_radius")
    limits = _values(eligible, "radius_limit")
    adv = _values(eligible, "adversarial_distance")
    return {"samples": len(radii), "median": _median(radii), "mean": _mean(radii), "max": max(radii, default=None),
            "zero": sum(1 for r in radii if r == 0), "limit_samples": len(limits), "median_limit": _median(limits),
            "adversarial_samples": len(adv), "median_adversarial": _median(adv)}


def _classes(results: Results, labelled: bool) -> tuple[tuple[ClassRow, ...], str]:
    key = "label" if labelled else "prediction"
    groups: dict[int | None, list[SampleRecord]] = {}
    for s in results.samples:
        groups.setdefault(getattr(s, key), []).append(s)
    eps = results.header.eps
    rows = []
    for cls in sorted(groups, key=lambda c: (c is None, c if c is not None else 0)):
        members = groups[cls]
        n = len(members)
        correct = _count(members, lambda s: _eligible(s, labelled))
        certified = _count(members, lambda s: certified_at(s, eps, eps, labelled))
        radii = _values([s for s in members if _eligible(s, labelled)], "certified_radius")
        rows.append(ClassRow(label="?" if cls is None else str(cls), samples=n, errored=_count(members, lambda s: s.errored),
                             correct=correct, certified=certified, clean_accuracy=correct / n,
                             certified_accuracy=certified / n, median_radius=_median(radii)))
    return tuple(rows), key


def _methods(results: Results, labelled: bool) -> tuple[MethodRow, ...]:
    eps = results.header.eps
    groups: dict[str, list[SampleRecord]] = {}
    for s in results.samples:
        if not s.errored:
            groups.setdefault(s.method or NO_METHOD, []).append(s)
    rows = []
    for method, members in groups.items():
        seconds = _values(members, "seconds")
        rows.append(MethodRow(method=method, samples=len(members),
                              certified=_count(members, lambda s: certified_at(s, eps, eps, labelled)),
                              total_seconds=math.fsum(seconds), median_seconds=_median(seconds)))
    return tuple(sorted(rows, key=lambda r: (r.method == NO_METHOD, -r.samples, r.method)))


def _lipschitz_stats(results: Results) -> dict[str, float | int | None]:
    both = [s for s in results.samples if s.lower is not None and s.upper is not None]
    ratios = [u / lo for lo, u in zip(_values(both, "lower"), _values(both, "upper")) if lo > 0]
    return {
        "samples": len(both),
        "upper_only": _count(results.samples, lambda s: s.upper is not None and s.lower is None),
        "lower_only": _count(results.samples, lambda s: s.lower is not None and s.upper is None),
        "exact": _count(both, lambda s: s.lower == s.upper),
        "median_lower": _median(_values(both, "lower")),
        "median_upper": _median(_values(results.samples, "upper")),
        "median_ratio": _median(ratios),
        "max_ratio": max(ratios, default=None),
    }


def _stability(results: Results, labelled: bool) -> tuple[dict[str, float | int | None], tuple[StabilityBin, ...]]:
    eps = results.header.eps
    shares = _values(results.samples, "stable_fraction")
    # (share, certified) of the eligible samples that carry a share
    eligible = [(s.stable_fraction, certified_at(s, eps, eps, labelled)) for s in results.samples
                if s.stable_fraction is not None and _eligible(s, labelled)]
    cert = [share for share, ok in eligible if ok]
    uncert = [share for share, ok in eligible if not ok]
    stats = {
        "samples": len(shares),
        "mean": _mean(shares),
        "median": _median(shares),
        "min": min(shares, default=None),
        "mean_unstable": _mean(_values(results.samples, "unstable")),
        "mean_certified": _mean(cert),
        "mean_not_certified": _mean(uncert),
        "certified_samples": len(cert),
        "not_certified_samples": len(uncert),
    }
    return stats, _stability_bins(eligible)


def _stability_bins(eligible: list[tuple[float, bool]]) -> tuple[StabilityBin, ...]:
    """The eligible samples split at the quartiles of their stable share
    (the last bin closed), with the certified fraction of each."""
    if len(eligible) < 8:
        return ()
    shares = [share for share, _ in eligible]
    edges = sorted({float(_quantile(shares, q) or 0.0) for q in (0.0, 0.25, 0.5, 0.75, 1.0)})
    if len(edges) == 1:
        edges = edges * 2
    bins = []
    for b, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        last = b == len(edges) - 2
        members = [ok for share, ok in eligible if low <= share and (share < high or (last and share <= high))]
        if members:
            bins.append(StabilityBin(low=low, high=high, samples=len(members), certified=sum(members),
                                     certified_fraction=sum(members) / len(members)))
    return tuple(bins)


def _time_stats(results: Results) -> dict[str, float | int | None]:
    seconds = _values(results.samples, "seconds")
    return {"samples": len(seconds), "total": math.fsum(seconds) if seconds else None, "mean": _mean(seconds),
            "median": _median(seconds), "p90": _quantile(seconds, 0.9), "max": max(seconds, default=None)}


def _notes(results: Results) -> tuple[str, ...]:
    notes = []
    if results.missing:
        notes.append(f"The job is incomplete: {results.missing} of {results.header.rows} samples have no record yet.")
    if results.torn_last_line:
        notes.append("The last line of the file was cut off (a crash or a job still writing) and was ignored.")
    if results.replaced:
        notes.append(f"{results.replaced} sample line(s) were superseded by a later line for the same index "
                     "(the later one is used).")
    if results.skipped_records:
        notes.append(f"Records of unknown kind were skipped: {', '.join(results.skipped_records)}.")
    return tuple(notes)


def summarize(results: Results, *, slowest: int = 8) -> Summary:
    """Every number of the report (definitions in the module docstring)."""
    labelled = has_labels(results.samples)
    has_attacks = any(s.adversarial_distance is not None for s in results.samples)
    classes, class_key = _classes(results, labelled)
    stability_stats, stability_bins = _stability(results, labelled)
    timed = sorted((s for s in results.samples if s.seconds is not None), key=lambda s: (-(s.seconds or 0.0), s.index))
    return Summary(
        results=results,
        headline=_headline(results, labelled, has_attacks),
        radius_table=_radius_table(results, labelled, has_attacks),
        radius_stats=_radius_stats(results, labelled),
        classes=classes,
        class_key=class_key,
        methods=_methods(results, labelled),
        lipschitz_stats=_lipschitz_stats(results),
        stability_stats=stability_stats,
        stability_bins=stability_bins,
        time_stats=_time_stats(results),
        slowest=tuple(timed[:slowest]),
        errors=tuple(s for s in results.samples if s.errored),
        has_attacks=has_attacks,
        notes=_notes(results),
    )


def _effective_radii(results: Results) -> np.ndarray:
    """Per sample, the largest radius at which it counts as certified
    (``-inf`` when at none): ``certified_at(s, r)`` iff ``r <= value``."""
    eps, labelled = results.header.eps, has_labels(results.samples)
    values = np.full(results.finished, -np.inf)
    for k, s in enumerate(results.samples):
        if _eligible(s, labelled):
            values[k] = max(s.certified_radius or 0.0, eps if s.certified else 0.0)
    return values


def certified_curve(results: Results, radii: Sequence[float]) -> np.ndarray:
    """Fraction of the finished samples certified at each radius in ``radii``
    (the same count as :func:`certified_at`, vectorised)."""
    values = np.sort(_effective_radii(results))
    at_least = values.size - np.searchsorted(values, np.asarray(radii, dtype=np.float64), side="left")
    return at_least / max(results.finished, 1)


def not_refuted_curve(results: Results, radii: Sequence[float]) -> np.ndarray:
    """Fraction of the finished samples not refuted at each radius (the same
    count as :func:`not_refuted_at`, vectorised)."""
    labelled = has_labels(results.samples)
    values = np.sort([(np.inf if s.adversarial_distance is None else s.adversarial_distance)
                      if _eligible(s, labelled) else -np.inf for s in results.samples])
    above = values.size - np.searchsorted(values, np.asarray(radii, dtype=np.float64), side="right")
    return above / max(results.finished, 1)
