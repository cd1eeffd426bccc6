"""Input regions: the sets over which a local Lipschitz constant is taken.

``Box(lo, hi)`` is an axis-aligned box; ``Ball(center, radius, p)`` an
ℓ1, ℓ2 or ℓ∞ ball. Both are validated when made (finite, ``lo <= hi``,
``radius > 0``) and against a network's input dimension when used
(:meth:`check_network`). Points are flat float64 vectors.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np

from lipmip.errors import InvalidRegionError
from lipmip.norms import dual_norm, norm_name, parse_norm, vector_norm
from lipmip.rounding import gamma as _gamma

__all__ = ["Box", "Ball", "Region", "as_region"]


def _finite_vector(value: Any, what: str) -> np.ndarray:
    kind = np.asarray(value).dtype.kind if not isinstance(value, (str, bytes)) else "U"
    if kind not in "biuf":
        raise InvalidRegionError(f"{what} must be numeric (real numbers), got {np.asarray(value).dtype}")
    try:
        arr = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise InvalidRegionError(f"{what} is not numeric ({exc})") from None
    arr = arr.reshape(-1) if arr.ndim != 0 else arr
    if not np.all(np.isfinite(arr)):
        raise InvalidRegionError(f"{what} holds NaN or inf")
    arr.setflags(write=False)
    return arr


class Region(abc.ABC):
    """Common interface of :class:`Box` and :class:`Ball`."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Number of input coordinates."""

    @property
    @abc.abstractmethod
    def center(self) -> np.ndarray:
        """A point in the middle of the region."""

    @abc.abstractmethod
    def bounding_box(self) -> "Box":
        """The smallest box holding the region."""

    @abc.abstractmethod
    def contains(self, x: Any, tol: float = 0.0) -> np.ndarray:
        """Whether each point (last axis) lies in the region, within ``tol``."""

    @abc.abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points drawn uniformly from the region, shape ``(n, dim)``."""

    @abc.abstractmethod
    def to_dict(self) -> dict:
        """A JSON-ready description."""

    @abc.abstractmethod
    def linear_range(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` with ``lo_i <= (A x)_i <= hi_i`` for every ``x`` in the
        region: the exact range of each row, enlarged by a bound on float64
        rounding."""

    def _points(self, x: Any) -> np.ndarray:
        """``x`` as float64 points whose last axis is the region's dimension."""
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidRegionError(f"points must be numeric, got {type(x).__name__}") from None
        if arr.shape[-1:] != (self.dim,):
            raise InvalidRegionError(f"points of shape {arr.shape} do not live in the region's dimension {self.dim}")
        return arr

    def check_network(self, net: Any) -> None:
        """Raise :class:`InvalidRegionError` unless the region lives in the
        network's input space."""
        if self.dim != net.input_dim:
            raise InvalidRegionError(
                f"{type(self).__name__} has dimension {self.dim} but the network takes {net.input_dim} inputs"
            )


class Box(Region):
    """The box ``{x : lo <= x <= hi}``. A scalar bound is repeated to the
    other's length; both must be finite with ``lo <= hi`` everywhere."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo: Any, hi: Any):
        lo_arr = _finite_vector(lo, "box lower bound")
        hi_arr = _finite_vector(hi, "box upper bound")
        if lo_arr.ndim == 0 and hi_arr.ndim == 0:
            lo_arr, hi_arr = lo_arr.reshape(1), hi_arr.reshape(1)
        elif lo_arr.ndim == 0:
            lo_arr = np.full(hi_arr.shape, float(lo_arr))
        elif hi_arr.ndim == 0:
            hi_arr = np.full(lo_arr.shape, float(hi_arr))
        if lo_arr.shape != hi_arr.shape:
            raise InvalidRegionError(f"box bounds have different lengths: {lo_arr.size} and {hi_arr.size}")
        if lo_arr.size == 0:
            raise InvalidRegionError("box has no coordinates")
        inverted = np.flatnonzero(lo_arr > hi_arr)
        if inverted.size:
            i = int(inverted[0])
            raise InvalidRegionError(
                f"box is empty: lo > hi at {inverted.size} coordinate(s), first at index {i} "
                f"({float(lo_arr[i])!r} > {float(hi_arr[i])!r})"
            )
        lo_arr.setflags(write=False)
        hi_arr.setflags(write=False)
        self.lo = lo_arr
        self.hi = hi_arr

    @property
    def dim(self) -> int:
        return int(self.lo.size)

    @property
    def center(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def radii(self) -> np.ndarray:
        return (self.hi - self.lo) / 2

    def bounding_box(self) -> "Box":
        return self

    def contains(self, x: Any, tol: float = 0.0) -> np.ndarray:
        x = self._points(x)
        return np.all((x >= self.lo - tol) & (x <= self.hi + tol), axis=-1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points drawn uniformly from the box (always inside it, even
        for bounds near the float range)."""
        u = rng.random((n, self.dim))
        return np.clip(self.lo * (1 - u) + self.hi * u, self.lo, self.hi)

    def linear_range(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        A = np.asarray(A, dtype=np.float64)
        Ap, An = np.maximum(A, 0.0), np.minimum(A, 0.0)
        lo = Ap @ self.lo + An @ self.hi
        hi = Ap @ self.hi + An @ self.lo
        err = _gamma(A.shape[-1] + 1) * (np.abs(A) @ np.maximum(np.abs(self.lo), np.abs(self.hi))) + _ABS_SLACK
        return lo - err, hi + err

    def to_dict(self) -> dict:
        return {"type": "box", "lo": self.lo.tolist(), "hi": self.hi.tolist()}

    def __repr__(self) -> str:
        if self.dim <= 4:
            return f"Box(lo={self.lo.tolist()}, hi={self.hi.tolist()})"
        lo, hi = self.lo, self.hi
        return f"Box(dim={self.dim}, lo in [{lo.min():.4g}, {lo.max():.4g}], hi in [{hi.min():.4g}, {hi.max():.4g}])"


class Ball(Region):
    """The closed ball ``{x : ‖x - center‖_p <= radius}`` for p in {1, 2, inf}."""

    __slots__ = ("_center", "radius", "p")

    def __init__(self, center: Any, radius: float, p: Any = math.inf):
        c = _finite_vector(center, "ball center")
        if c.ndim == 0:
            c = c.reshape(1)
        if c.size == 0:
            raise InvalidRegionError("ball center has no coordinates")
        try:
            if isinstance(radius, (str, bytes)):
                raise TypeError
            r = float(radius)
        except (TypeError, ValueError):
            raise InvalidRegionError(f"ball radius must be a number, got {radius!r}") from None
        if not math.isfinite(r) or r <= 0:
            raise InvalidRegionError(f"ball radius must be finite and > 0, got {radius!r}")
        c.setflags(write=False)
        self._center = c
        self.radius = r
        self.p = parse_norm(p, InvalidRegionError, "ball norm")

    @property
    def center(self) -> np.ndarray:
        return self._center

    @property
    def dim(self) -> int:
        return int(self._center.size)

    def bounding_box(self) -> Box:
        """The smallest box holding the ball (``center ± radius`` for every p),
        rounded outward so it holds the ball in exact arithmetic too."""
        return Box(_sum_rounded(self._center, -self.radius, down=True), _sum_rounded(self._center, self.radius, down=False))

    def contains(self, x: Any, tol: float = 0.0) -> np.ndarray:
        x = self._points(x)
        return vector_norm(x - self.center, self.p) <= self.radius + tol

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points drawn uniformly from the ball."""
        d = self.dim
        if self.p == math.inf:
            u = rng.uniform(-1.0, 1.0, (n, d))
        elif self.p == 2.0:
            g = rng.standard_normal((n, d))
            g /= np.linalg.norm(g, axis=1, keepdims=True)
            u = g * rng.random((n, 1)) ** (1.0 / d)
        else:
            # uniform in the ℓ1 ball: exponential spacings with random signs
            e = rng.exponential(size=(n, d + 1))
            u = e[:, :d] / e.sum(axis=1, keepdims=True) * rng.choice([-1.0, 1.0], size=(n, d))
        return self.center + self.radius * u

    def clip(self, lo: Any, hi: Any) -> Box:
        """The intersection of an ℓ∞ ball with the box ``[lo, hi]`` (e.g. the
        valid pixel range), as a :class:`Box`. Other norms give no box and
        are refused."""
        if self.p != math.inf:
            raise InvalidRegionError(f"only an l-inf ball can be clipped to a box; this ball has p={norm_name(self.p)}")
        outer = self.bounding_box()
        clip = Box(np.broadcast_to(np.asarray(lo, dtype=np.float64), (self.dim,)),
                   np.broadcast_to(np.asarray(hi, dtype=np.float64), (self.dim,)))
        new_lo, new_hi = np.maximum(outer.lo, clip.lo), np.minimum(outer.hi, clip.hi)
        if np.any(new_lo > new_hi):
            raise InvalidRegionError("the ball does not meet the clipping box")
        return Box(new_lo, new_hi)

    def linear_range(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        A = np.asarray(A, dtype=np.float64)
        mid = A @ self._center
        spread = self.radius * vector_norm(A, dual_norm(self.p), axis=-1)
        n = A.shape[-1]
        err = _gamma(n + 1) * (np.abs(A) @ np.abs(self._center)) + _gamma(2 * n + 4) * spread + _ABS_SLACK
        return mid - spread - err, mid + spread + err

    def to_dict(self) -> dict:
        return {"type": "ball", "center": self.center.tolist(), "radius": self.radius, "p": norm_name(self.p)}

    def __repr__(self) -> str:
        return f"Ball(dim={self.dim}, radius={self.radius!r}, p={norm_name(self.p)})"


_ABS_SLACK = 1e-300  # covers underflow in the sums above




def _sum_rounded(a: np.ndarray, b: float, down: bool) -> np.ndarray:
    """``a + b`` rounded down (or up) instead of to nearest: the error-free
    TwoSum transformation tells on which side the rounded sum fell."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)  # exact: s + err == a + b
    if down:
        return np.where(err < 0, np.nextafter(s, -np.inf), s)
    return np.where(err > 0, np.nextafter(s, np.inf), s)


def as_region(region: Any) -> Region:
    """Accept a :class:`Region` (returned as is) or refuse with a clear error."""
    if isinstance(region, Region):
        return region
    raise InvalidRegionError(f"expected a lipmip.Box or lipmip.Ball, got {type(region).__name__}")
