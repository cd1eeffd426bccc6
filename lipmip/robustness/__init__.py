"""Certified robustness over data sets.

For each sample: is every input within ε of it (in an ℓ∞, ℓ2 or ℓ1 ball)
provably given the same prediction, and up to what radius can that be
proven? Built on certified local Lipschitz bounds of the margins
``f_y - f_j`` (:mod:`lipmip.robustness.radius`), with a verified attack
(:mod:`~lipmip.robustness.attack`), a resumable JSON Lines results file
(:mod:`~lipmip.robustness.results`), in-process or Dask execution
(:mod:`~lipmip.robustness.batch`), the Python API (:func:`certify`) and the
``lipmip certify`` command (:mod:`~lipmip.robustness.cli`).
"""

from lipmip.errors import ClusterError, DataError, ResultsFileError
from lipmip.robustness.api import certify, run_certify, summary_line
from lipmip.robustness.attack import Adversarial, find_adversarial
from lipmip.robustness.radius import CertifySettings, certify_sample
from lipmip.robustness.results import read_results

__all__ = [
    "Adversarial",
    "CertifySettings",
    "ClusterError",
    "DataError",
    "ResultsFileError",
    "certify",
    "certify_sample",
    "find_adversarial",
    "read_results",
    "run_certify",
    "summary_line",
]
