"""JAX functions of ReLU MLPs, for training pipelines and fast estimates.

Everything here is pure: ``jax.jit``, ``jax.vmap`` and ``jax.grad`` (with
respect to the parameters and the inputs) apply. ``params`` is a list of
``(W, b)`` pairs with ``W`` of shape ``(out, in)``, or an Equinox / Flax model
(:func:`as_params`); ReLU follows every layer but the last unless
``activations=`` says otherwise. Norms are spelled as in lipmip (``"inf"``,
``2``, ``1``).

* :mod:`lipmip.jax.core`: forward pass, smoothed copy, gradients, local values
  (shared with :mod:`lipmip.estimate`);
* :mod:`lipmip.jax.params`: models as ``(W, b)`` lists, traceably;
* :mod:`lipmip.jax.bounds`: ``lower_bound``, ``product_upper_bound``,
  ``preactivation_bounds``, ``interval_jacobian_bound``;
* :mod:`lipmip.jax.penalties`: ``stability_regulariser``, ``stable_fraction``,
  ``lipschitz_penalty``.

These are training-time numbers in the arrays' dtype, uncertified (see
:mod:`lipmip.jax.bounds`); certified bounds come from :func:`lipmip.lipschitz`.
See ``docs/training.md``.
"""

from lipmip.jax.bounds import (
    interval_jacobian_bound,
    local_values,
    lower_bound,
    operator_norm,
    preactivation_bounds,
    product_upper_bound,
    vector_norm,
)
from lipmip.jax.core import default_activations, forward, local_value
from lipmip.jax.params import activations_of, as_params
from lipmip.jax.penalties import PENALTY_KINDS, lipschitz_penalty, stability_regulariser, stable_fraction

__all__ = [
    "PENALTY_KINDS",
    "activations_of",
    "as_params",
    "default_activations",
    "forward",
    "interval_jacobian_bound",
    "lipschitz_penalty",
    "local_value",
    "local_values",
    "lower_bound",
    "operator_norm",
    "preactivation_bounds",
    "product_upper_bound",
    "stability_regulariser",
    "stable_fraction",
    "vector_norm",
]
