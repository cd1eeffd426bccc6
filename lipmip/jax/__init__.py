"""JAX functions of ReLU MLPs, for training pipelines and fast estimates.

:mod:`lipmip.jax.core` holds the pure building blocks (forward pass, smoothed
copy, gradients, local Lipschitz values) shared with :mod:`lipmip.estimate`.
"""

from lipmip.jax.core import default_activations, forward, local_value

__all__ = ["default_activations", "forward", "local_value"]
