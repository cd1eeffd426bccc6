"""The network and data that ship with lipmip (made by ``scripts/train_digits.py``).

``digits_network()`` is a 64-32-32-10 ReLU MLP trained on scikit-learn's
bundled 8x8 digits; its input is the 64 pixels scaled to [0, 1].
``digits_test_data()`` gives the 360 held-out images in that scaling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lipmip.io.npz import load_npz
from lipmip.network import Network

__all__ = ["DATA_DIR", "digits_network", "digits_test_data", "DIGITS_MODEL", "DIGITS_TEST"]

DATA_DIR = Path(__file__).resolve().parent / "data"
DIGITS_MODEL = DATA_DIR / "digits_mlp.npz"
DIGITS_TEST = DATA_DIR / "digits_test.npz"


def digits_network() -> Network:
    """The bundled digits MLP (64 inputs in [0, 1], 10 logits)."""
    return load_npz(DIGITS_MODEL)


def digits_test_data() -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: 360 held-out digits, ``X`` float64 in [0, 1] of shape (360, 64)."""
    with np.load(DIGITS_TEST) as data:
        return data["X"] * float(data["scale"]), data["y"].copy()
