"""Train the small MLP that ships with lipmip (``lipmip/data/digits_mlp.npz``).

The data is scikit-learn's bundled copy of the UCI optical digits (8x8 images,
pixels 0..16, 1,797 samples); nothing is downloaded. Pixels are scaled to
[0, 1] (divided by 16) and the network takes the 64 pixels row-major. The
split is stratified and seeded, so re-running the script reproduces the same
files bit for bit on the same library versions.

    python scripts/train_digits.py                 # writes lipmip/data/*.npz
    python scripts/train_digits.py --hidden 64 64  # other sizes

Needs scikit-learn (``pip install -e '.[dev]'``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "lipmip" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 32], help="hidden layer widths")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args()

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    X = digits.data / 16.0
    y = digits.target
    X_train, X_test, y_train, y_test, _, idx_test = train_test_split(
        X, y, np.arange(len(y)), test_size=0.2, stratify=y, random_state=args.seed
    )
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(args.hidden),
        activation="relu",
        alpha=1e-3,
        max_iter=2000,
        random_state=args.seed,
        tol=1e-6,
        n_iter_no_change=30,
    )
    clf.fit(X_train, y_train)
    train_acc = clf.score(X_train, y_train)
    test_acc = clf.score(X_test, y_test)

    arrays: dict[str, np.ndarray] = {}
    for i, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_), start=1):
        arrays[f"W{i}"] = np.asarray(W, dtype=np.float64).T  # sklearn stores (in, out)
        arrays[f"b{i}"] = np.asarray(b, dtype=np.float64)
    n_layers = len(clf.coefs_)
    arrays["activations"] = np.array(["relu"] * (n_layers - 1) + ["identity"])
    arrays["input_shape"] = np.array([64], dtype=np.int64)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "digits_mlp.npz", **arrays)
    # the held-out images as raw pixel counts (0..16): X / 16 is the network input
    np.savez_compressed(
        args.out / "digits_test.npz",
        X=(X_test * 16).round().astype(np.uint8),
        y=y_test.astype(np.int64),
        index=idx_test.astype(np.int64),
        scale=np.array(1 / 16),
    )
    # check the saved network against sklearn's own logits
    logits = X_test
    for i in range(1, n_layers + 1):
        logits = logits @ arrays[f"W{i}"].T + arrays[f"b{i}"]
        if i < n_layers:
            logits = np.maximum(logits, 0)
    agree = np.mean(logits.argmax(1) == clf.predict(X_test))
    sizes = "-".join(str(s) for s in [64, *args.hidden, 10])
    print(f"digits MLP {sizes}: train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f} "
          f"({len(y_test)} test images), saved logits agree with sklearn on {agree:.0%}")
    print(f"wrote {args.out / 'digits_mlp.npz'} and {args.out / 'digits_test.npz'}")


if __name__ == "__main__":
    main()
