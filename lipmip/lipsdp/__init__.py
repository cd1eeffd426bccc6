"""LipSDP-Neuron upper bounds for ℓ2 (Fazlyab, Robey, Hassani, Morari,
Pappas, "Efficient and accurate estimation of Lipschitz constants for deep
neural networks", NeurIPS 2019, arXiv 1906.04893), with a certified last step.

**The LMI.** With ``v = (x, u)``, ``x`` the free inputs and ``u`` the outputs
of the neurons whose slope is not fixed, every free neuron's pre-activation
``z_i = z_iᵀ v`` and the queried output ``y = Y v`` are linear in ``v``. A
ReLU with slope in [0, 1] satisfies, for any two inputs,
``Δu_i (Δz_i - Δu_i) >= 0``, so for multipliers ``λ_i >= 0``

    M(ρ, λ) = YᵀY - ρ [I 0; 0 0] + Σ_i λ_i (e_i z_iᵀ + z_i e_iᵀ - 2 e_i e_iᵀ)  ⪯  0

implies ``‖Δy‖² <= ρ ‖Δx‖²``: the Lipschitz constant is at most ``sqrt(ρ)``.
The SDP minimises ρ over ``λ`` (one per neuron: ``variant="neuron"``; one per
layer: ``variant="layer"``). Globally every ReLU has slope in [0, 1] and the
bound holds for every region; locally the slope bounds come from the forward
bounds over the region (active [1, 1] and inactive [0, 0] neurons fixed,
unstable [0, 1]). A network with no free neuron (one affine layer, or every
ReLU stable) gives ``ρ = ‖Y‖²``, the exact value, without a solver.

The modules, one step each:

* :mod:`lipmip.lipsdp.chain`: the LMI's data (the chain, slope masks, idle
  neurons dropped, the input block reduced to the row space of ``W_1``);
* :mod:`lipmip.lipsdp.solvers`: the SDP through cvxpy (Clarabel, SCS) and the
  order in which solvers are tried;
* :mod:`lipmip.lipsdp.barrier`: lipmip's log-barrier solver for this LMI;
* :mod:`lipmip.lipsdp.certificate`: the solver's multipliers to a ρ' proven in
  float64 (verified Cholesky); the solver's own value is never the bound;
* :mod:`lipmip.lipsdp.bound`: :func:`lipsdp_upper_bound`, the steps in order.
"""

from lipmip.lipsdp.bound import CAVEAT, lipsdp_upper_bound
from lipmip.lipsdp.solvers import CLARABEL_AUTO_BLOCK, CLARABEL_MAX_BLOCK, SOLVERS, VARIANTS

__all__ = ["lipsdp_upper_bound", "SOLVERS", "VARIANTS", "CAVEAT", "CLARABEL_AUTO_BLOCK", "CLARABEL_MAX_BLOCK"]
