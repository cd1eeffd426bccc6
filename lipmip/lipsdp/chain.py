"""The LipSDP LMI's data: the network over the region as a chain in ``v = (x, u)``.

Write the network over the region as a chain in the variables ``v = (x, u)``:
``x`` the free input coordinates, ``u`` the outputs of the neurons whose slope
is not fixed (every ReLU, globally; the unstable ones, locally). A neuron
whose slope is fixed is eliminated: an active ReLU or an identity neuron
passes its pre-activation on, an inactive one passes 0. Every pre-activation
``z_i`` of a free neuron, and the queried output ``y`` (``c·f`` or ``f``),
are then linear in ``v``: ``z_i = z_iᵀ v``, ``y = Y v`` (:class:`Chain`, built
by :func:`build_chain` from the slope masks of :func:`slope_masks`, with an
entrywise bound on every rounding error).

Neurons that cannot matter are dropped first (:func:`without_idle_neurons`):
those whose pre-activation does not depend on the input (``Δu = 0``) and
those with no path to the queried output. Since ``x`` enters only through
the first layer, the SDP is solved with the input block reduced to the row
space of ``W_1`` (:func:`reduced`: a ``rank(W_1)`` block instead of an
``n_in`` one; the optimum is the same in exact arithmetic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lipmip.bounds.base import Bounds
from lipmip.network import Network
from lipmip.rounding import SMALLEST_SUBNORMAL as _ETA
from lipmip.rounding import gamma

__all__ = ["Chain", "build_chain", "without_idle_neurons", "depends_on_input", "slope_masks", "normalised", "Reduced",
           "reduced"]


@dataclass(frozen=True)
class Chain:
    """The queried output and every free neuron's pre-activation as linear
    maps of ``v = (x_free, u)``, each with an entrywise bound on its rounding
    error: ``|Y_exact - Y| <= Y_err``, ``|Z_exact - Z| <= Z_err``."""

    n_x: int
    Z: np.ndarray  # (free neurons, dim v)
    Z_err: np.ndarray
    Y: np.ndarray  # (outputs of the query, dim v)
    Y_err: np.ndarray
    layer_of: np.ndarray  # activation layer of each free neuron
    first_weights: np.ndarray  # W_1 restricted to the free inputs (x enters only through it)

    @property
    def dim(self) -> int:
        return self.Z.shape[1]

    @property
    def free_neurons(self) -> int:
        return self.Z.shape[0]


def _product_with_error(A: np.ndarray, B: np.ndarray, B_err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fl(A B)`` for an exact ``A`` and ``B`` known to within ``B_err``, and
    an entrywise bound on its distance to the exact product: the dot-product
    rounding ``γ_{k+1} |A||B|`` plus the propagated ``|A| B_err`` plus
    underflow, doubled to cover the rounding of the bound itself."""
    k = A.shape[1]
    absA = np.abs(A)
    # underflow: each of the product terms that is not exactly zero may lose η/2
    terms = (absA > 0).astype(np.float64) @ ((B != 0) | (B_err > 0)).astype(np.float64)
    err = gamma(k + 1) * (absA @ np.abs(B)) + absA @ B_err + terms * _ETA
    return A @ B, 2.0 * err


def build_chain(net: Network, slopes: list[tuple[np.ndarray, np.ndarray, np.ndarray]], free: np.ndarray,
                c: np.ndarray | None) -> Chain:
    """The chain for ``slopes[k] = (active, inactive, free)`` masks of every
    activation layer ``k`` (the hidden layers, and the output layer when it
    has a ReLU), the free input mask, and the head ``c`` (None: the whole output)."""
    layers = net.layers
    n_x = int(free.sum())
    counts = [int(s[2].sum()) for s in slopes]
    offsets = np.concatenate([[n_x], n_x + np.cumsum(counts)]).astype(int)
    dim = int(offsets[-1])
    Z_rows, Z_err_rows, layer_of = [], [], []
    W1 = layers[0].W[:, free]
    Z = np.zeros((layers[0].out_features, dim))
    Z[:, :n_x] = W1
    Z_err = np.zeros_like(Z)
    post, post_err = None, None  # post-activation of the previous activation layer as a map of v
    for k, layer in enumerate(layers):
        if k > 0:
            active, _, unstable = slopes[k - 1]
            Z, Z_err = _product_with_error(layer.W[:, active], post[active], post_err[active])
            Z[:, offsets[k - 1]:offsets[k]] += layer.W[:, unstable]  # these columns of post[active] are 0: exact
        if k < len(slopes):
            active, inactive, unstable = slopes[k]
            Z_rows.append(Z[unstable])
            Z_err_rows.append(Z_err[unstable])
            layer_of += [k] * int(unstable.sum())
            post = np.where(active[:, None], Z, 0.0)
            post_err = np.where(active[:, None], Z_err, 0.0)
            post[np.flatnonzero(unstable), offsets[k] + np.arange(counts[k])] = 1.0
        else:
            post, post_err = Z, Z_err
    if c is None:
        Y, Y_err = post, post_err
    else:
        Y, Y_err = _product_with_error(c[None, :], post, post_err)
    return Chain(
        n_x=n_x,
        Z=np.vstack(Z_rows) if Z_rows else np.zeros((0, dim)),
        Z_err=np.vstack(Z_err_rows) if Z_err_rows else np.zeros((0, dim)),
        Y=Y,
        Y_err=Y_err,
        layer_of=np.array(layer_of, dtype=int),
        first_weights=W1,
    )


def without_idle_neurons(chain: Chain) -> Chain:
    """The chain without the free neurons that cannot matter: those whose
    pre-activation does not depend on the input (no path of nonzero weights
    from a free input: ``Δu_i = 0`` for every pair of inputs, so the LMI is
    only needed on ``u_i = 0``), and those the queried output cannot depend
    on (their rows of the LMI would hold only ``-2λ_i`` and ``λ_i z_i``, and
    dropping a neuron's quadratic constraint keeps the LMI a valid
    certificate). Without them the SDP has a bounded optimal set."""
    n_x, N = chain.n_x, chain.free_neurons
    feeds_output = np.any((chain.Y[:, n_x:] != 0) | (chain.Y_err[:, n_x:] > 0), axis=0)
    feeds = (chain.Z[:, n_x:] != 0) | (chain.Z_err[:, n_x:] > 0)  # feeds[j, i]: neuron j depends on neuron i
    from_input = np.any((chain.Z[:, :n_x] != 0) | (chain.Z_err[:, :n_x] > 0), axis=1)
    varies = np.zeros(N, dtype=bool)
    for i in range(N):  # a neuron depends only on neurons of earlier layers (smaller slots)
        varies[i] = from_input[i] or bool(np.any(feeds[i, :i] & varies[:i]))
    kept = np.zeros(N, dtype=bool)
    for i in range(N - 1, -1, -1):
        kept[i] = varies[i] and (feeds_output[i] or bool(np.any(feeds[kept, i])))
    if kept.all():
        return chain
    columns = np.concatenate([np.arange(n_x), n_x + np.flatnonzero(kept)])
    return Chain(
        n_x=n_x,
        Z=chain.Z[kept][:, columns],
        Z_err=chain.Z_err[kept][:, columns],
        Y=chain.Y[:, columns],
        Y_err=chain.Y_err[:, columns],
        layer_of=chain.layer_of[kept],
        first_weights=chain.first_weights,
    )


def depends_on_input(chain: Chain) -> bool:
    """Whether some free input reaches the output through a nonzero weight
    (directly or through a kept neuron, :func:`without_idle_neurons`)."""
    n_x = chain.n_x
    direct = (chain.Y[:, :n_x] != 0) | (chain.Y_err[:, :n_x] > 0)
    through = (chain.Z[:, :n_x] != 0) | (chain.Z_err[:, :n_x] > 0)
    return bool(np.any(direct) or np.any(through))


def slope_masks(net: Network, forward: Bounds | None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(active, inactive, free) per activation layer: from the forward bounds
    (local), or every ReLU free and every identity neuron active (global)."""
    count = len(net.layers) - (0 if net.has_output_activation else 1)
    masks = []
    for k in range(count):
        layer = net.layers[k]
        n = layer.out_features
        if layer.activation.name == "identity":
            masks.append((np.ones(n, bool), np.zeros(n, bool), np.zeros(n, bool)))
        elif forward is None:
            masks.append((np.zeros(n, bool), np.zeros(n, bool), np.ones(n, bool)))
        else:
            masks.append((forward.active[k].copy(), forward.inactive[k].copy(), forward.unstable[k].copy()))
    return masks


def normalised(chain: Chain) -> tuple[Chain, float]:
    """The chain with its output map divided by a power of two ``s`` that
    brings the largest column norm of ``Y`` near 1 (the SDP is better
    conditioned), and ``s``; ``L = s · L_normalised``."""
    peak = float(np.max(np.linalg.norm(chain.Y, axis=0))) if chain.Y.size else 0.0
    if not peak > 0.0 or not math.isfinite(peak):
        return chain, 1.0
    scale = math.ldexp(1.0, math.frexp(peak)[1] - 1)
    Y = chain.Y / scale
    # a nonzero quotient landing in the subnormal range loses up to η/2; a zero stays exact
    Y_err = chain.Y_err / scale + np.where(chain.Y != 0, _ETA if scale > 1 else 0.0, 0.0)
    return Chain(chain.n_x, chain.Z, chain.Z_err, Y, Y_err, chain.layer_of, chain.first_weights), scale


@dataclass(frozen=True)
class Reduced:
    """The LMI data for the solver: ``Y`` and ``Z`` with the input block
    expressed in an orthonormal basis of the row space of ``W_1`` (``r``
    coordinates; float only, the certificate uses the full chain)."""

    Y: np.ndarray
    Z: np.ndarray
    r: int
    layer_of: np.ndarray

    @property
    def dim(self) -> int:
        return self.r + self.Z.shape[0]

    def largest_clique(self) -> int:
        """An estimate of the largest dense block a chordal decomposition of the
        LMI leaves: the widest row envelope (``i - min{j : M_ij != 0} + 1``) in
        the natural order (inputs, then layer by layer), which bounds the
        cliques of the Cholesky fill."""
        D, r = self.dim, self.r
        pattern = np.zeros((D, D), dtype=bool)
        cols = np.flatnonzero(np.any(self.Y != 0, axis=0))
        pattern[np.ix_(cols, cols)] = True
        pattern[r:, :] |= self.Z != 0
        pattern |= pattern.T
        pattern[np.diag_indices(D)] = True
        first = np.argmax(pattern, axis=1)
        return int(np.max(np.arange(D) - first + 1))


def reduced(chain: Chain) -> Reduced:
    """The chain's LMI data with the input block in an orthonormal basis of the
    row space of ``W_1`` (the identity when ``W_1`` has at least as many rows
    as columns), for the solvers."""
    W1, n_x = chain.first_weights, chain.n_x
    if W1.shape[0] >= W1.shape[1]:
        basis = np.eye(n_x)
    else:
        _, _, vt = np.linalg.svd(W1, full_matrices=False)
        basis = vt.T
    Y = np.hstack([chain.Y[:, :n_x] @ basis, chain.Y[:, n_x:]])
    Z = np.hstack([chain.Z[:, :n_x] @ basis, chain.Z[:, n_x:]])
    return Reduced(Y, Z, basis.shape[1], chain.layer_of)
