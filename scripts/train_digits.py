"""Train the small MLP that ships with lipmip (``lipmip/data/digits_mlp.npz``),
and the training study (``--study``).

The data is scikit-learn's bundled copy of the UCI optical digits (8x8 images,
pixels 0..16, 1,797 samples); nothing is downloaded. Pixels are scaled to
[0, 1] (divided by 16) and the network takes the 64 pixels row-major. The
split is stratified and seeded, so re-running the script reproduces the same
files bit for bit on the same library versions.

    python scripts/train_digits.py                 # writes lipmip/data/*.npz
    python scripts/train_digits.py --hidden 64 64  # other sizes

``--study`` trains 64-32-32-10 MLPs in JAX (optax Adam) on the same split,
plain and with the terms of :mod:`lipmip.jax` (the ReLU-stability
regulariser of Xiao et al. 2019, an interval Lipschitz penalty, both), logs
per epoch (progress bar, and one JSON line each) the test accuracy, the
certified share of stable ReLUs over ℓ∞ balls, and certified lower and upper
Lipschitz bounds of the top-2 margin on a few test images, then measures the
exact-solve cost (``method="bab"`` and ``method="mip"``) of each trained net,
and writes ``docs/benchmarks/training.md`` (a '## Reading' section already in
that file is kept) and ``docs/benchmarks/training_log.jsonl``:

    python scripts/train_digits.py --study                      # about 10 minutes on 2 cores
    python scripts/train_digits.py --study --epochs 2 --images 1 --out-dir /tmp/study   # a smoke run

Needs scikit-learn (``pip install -e '.[dev]'``); the study also optax and tqdm.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "lipmip" / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 32], help="hidden layer widths")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DATA, help="folder of the bundled network's files")
    study_options = parser.add_argument_group("the training study")
    study_options.add_argument("--study", action="store_true", help="run the training study instead")
    study_options.add_argument("--configs", nargs="+", metavar="NAME", help=f"configurations (default all: {', '.join(CONFIGS)})")
    study_options.add_argument("--epochs", type=int, default=30)
    study_options.add_argument("--radius", type=float, default=0.05, help="l-inf radius for training and measuring")
    study_options.add_argument("--stable-images", type=int, default=50, help="test images the stable share is taken over")
    study_options.add_argument("--images", type=int, default=3, help="test images for the Lipschitz bounds and exact solves")
    study_options.add_argument("--bab-time", type=float, default=30.0, help="time limit of method='bab' (s)")
    study_options.add_argument("--mip-time", type=float, default=20.0, help="time limit of method='mip' (s)")
    study_options.add_argument("--out-dir", type=Path, default=BENCHMARKS, help="where training.md and the log go")
    study_options.add_argument("--from-log", type=Path, metavar="JSONL", help="only re-render training.md from a study log")
    args = parser.parse_args()
    if args.study:
        args.argv_extra = " ".join(a for a in sys.argv[1:] if a != "--study")
        study(args)
        return
    train_bundled(args)


def train_bundled(args: argparse.Namespace) -> None:
    """The bundled network: scikit-learn's MLPClassifier, saved with the held-out images."""
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


# ---------------------------------------------------------------------- the training study (--study)


@dataclass(frozen=True)
class Config:
    """One training run of the study: cross-entropy plus ``rs`` times the
    stability regulariser plus ``lip`` times the interval Lipschitz penalty."""

    name: str
    rs: float = 0.0
    lip: float = 0.0

    def describe(self) -> str:
        terms = ["cross-entropy"]
        if self.rs:
            terms.append(f"{self.rs:g} × RS loss")
        if self.lip:
            terms.append(f"{self.lip:g} × interval Lipschitz penalty")
        return " + ".join(terms)


CONFIGS = {
    c.name: c
    for c in (
        Config("plain"),
        Config("rs-1e-3", rs=1e-3),
        Config("rs-3e-3", rs=3e-3),
        Config("rs-1e-2", rs=1e-2),
        Config("lip-3e-3", lip=3e-3),
        Config("rs-3e-3+lip-3e-3", rs=3e-3, lip=3e-3),
    )
}


@dataclass(frozen=True)
class StudySettings:
    epochs: int
    radius: float
    stable_images: int
    bound_images: int
    bab_time: float
    mip_time: float
    hidden: tuple[int, ...]
    seed: int
    batch: int = 64
    learning_rate: float = 2e-3


def digits_split(seed: int) -> tuple[np.ndarray, ...]:
    """The split of the default path: pixels / 16, 20% stratified test set."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    return X_train, X_test, y_train, y_test


def init_params(key: Any, sizes: list[int]) -> list:
    """He-normal weights, zero biases, float32."""
    import jax
    import jax.numpy as jnp

    params = []
    for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        params.append((jax.random.normal(k, (n_out, n_in)) * np.sqrt(2.0 / n_in), jnp.zeros(n_out)))
    return params


def make_step(config: Config, settings: StudySettings, optimizer: Any) -> Any:
    """One jitted Adam step on a batch; returns the new state and the loss terms."""
    import jax
    import jax.numpy as jnp
    import optax

    import lipmip.jax as lj

    r = settings.radius

    def loss(params, X, y):
        logits = jax.vmap(lambda x: lj.forward(params, x))(X)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        rs = lj.stability_regulariser(params, X, r)  # logged in every configuration (cheap)
        lip = lj.lipschitz_penalty(params, kind="interval", centers=X, radius=r) if config.lip else jnp.nan
        return ce + config.rs * rs + (config.lip * lip if config.lip else 0.0), (ce, rs, lip)

    @jax.jit
    def step(params, state, X, y):
        (_, terms), grads = jax.value_and_grad(loss, has_aux=True)(params, X, y)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, terms

    return step


def as_network(params: list) -> Any:
    import lipmip

    return lipmip.Network.from_params([(np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)) for W, b in params])


def top2_query(net: Any, x: np.ndarray) -> Any:
    """The margin f_predicted − f_runner-up at ``x``, ℓ∞ input norm."""
    import lipmip

    first, second = np.argsort(-net(x))[:2]
    return lipmip.Query.margin(int(first), int(second), net.output_dim, input_norm="inf")


def evaluate(net: Any, params: list, X_test: np.ndarray, y_test: np.ndarray, settings: StudySettings) -> dict:
    """Accuracy, certified stable share, certified bounds on a few images, and the training-time JAX numbers."""
    import jax.numpy as jnp

    import lipmip
    import lipmip.jax as lj
    from lipmip.bounds import compute

    r = settings.radius
    accuracy = float(np.mean(net(X_test).argmax(axis=1) == y_test))
    stable_images = X_test[: settings.stable_images]
    forward = [compute(net, lipmip.Ball(x, r, "inf"), "linear") for x in stable_images]
    lower, interval, naive, jax_interval = [], [], [], []
    for x in X_test[: settings.bound_images]:
        ball, query = lipmip.Ball(x, r, "inf"), top2_query(net, x)
        lower.append(lipmip.lipschitz(net, ball, query, method="sample", samples=500).lower)
        interval.append(lipmip.lipschitz(net, ball, query, method="interval").upper)
        naive.append(lipmip.lipschitz(net, ball, query, method="naive").upper)
        c = jnp.asarray(query.c, jnp.float32)
        jax_interval.append(float(lj.interval_jacobian_bound(params, jnp.asarray(x, jnp.float32), r, c=c)))
    return {
        "test_accuracy": accuracy,
        "stable_pct": 100 * float(np.mean([f.stable_fraction for f in forward])),
        "unstable_relus": float(np.mean([f.num_unstable for f in forward])),
        "jax_interval_stable_pct": 100 * float(lj.stable_fraction(params, jnp.asarray(stable_images, jnp.float32), r)),
        "lower": lower,
        "interval_upper": interval,
        "naive_upper": naive,
        "jax_interval_bound": jax_interval,
    }


def exact_costs(net: Any, X_test: np.ndarray, settings: StudySettings) -> list[dict]:
    """bab and MIP on the bound images: value, status, seconds."""
    import lipmip

    rows = []
    for i, x in enumerate(X_test[: settings.bound_images]):
        ball, query = lipmip.Ball(x, settings.radius, "inf"), top2_query(net, x)
        row = {"image": i}
        for method, limit in (("bab", settings.bab_time), ("mip", settings.mip_time)):
            start = time.perf_counter()
            result = lipmip.lipschitz(net, ball, query, method=method, time_limit=limit)
            row[method] = {"lower": result.lower, "upper": result.upper, "status": result.status,
                           "seconds": time.perf_counter() - start}
        rows.append(row)
    return rows


def train_config(config: Config, settings: StudySettings, data: tuple, log: Any) -> dict:
    """Train one configuration with a per-epoch progress bar and log line; then measure the exact-solve cost."""
    import jax
    import jax.numpy as jnp
    import optax
    from tqdm import tqdm

    X_train, X_test, y_train, y_test = data
    sizes = [64, *settings.hidden, 10]
    params = init_params(jax.random.PRNGKey(settings.seed), sizes)
    optimizer = optax.adam(settings.learning_rate)
    state = optimizer.init(params)
    step = make_step(config, settings, optimizer)
    rng = np.random.default_rng(settings.seed)
    batches = len(X_train) // settings.batch
    start = time.perf_counter()
    epochs: list[dict] = []
    bar = tqdm(range(1, settings.epochs + 1), desc=f"{config.name:>18}", unit="epoch", dynamic_ncols=True)
    for epoch in bar:
        order = rng.permutation(len(X_train))[: batches * settings.batch].reshape(batches, settings.batch)
        terms = []
        for rows in order:
            params, state, t = step(params, state, jnp.asarray(X_train[rows], jnp.float32), jnp.asarray(y_train[rows]))
            terms.append([float(v) for v in t])
        net = as_network(params)
        record = {"config": config.name, "epoch": epoch, "seconds": round(time.perf_counter() - start, 3),
                  "cross_entropy": float(np.mean([t[0] for t in terms])), "rs_loss": float(np.mean([t[1] for t in terms])),
                  "lipschitz_penalty": float(np.mean([t[2] for t in terms])) if config.lip else None,
                  **evaluate(net, params, X_test, y_test, settings)}
        epochs.append(record)
        log.write(json.dumps(record) + "\n")
        log.flush()
        bar.set_postfix_str(f"acc {record['test_accuracy']:.3f}  stable {record['stable_pct']:.1f}%  "
                            f"L in [{np.mean(record['lower']):.0f}, {np.mean(record['interval_upper']):.0f}]")
    bar.close()
    summary = {"config": config.name, "description": config.describe(), "train_seconds": record["seconds"],
               "exact": exact_costs(net, X_test, settings)}
    log.write(json.dumps(summary) + "\n")
    log.flush()
    return {**summary, "epochs": epochs}


def _mean(values: list) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else math.nan


def _exact_value(row: dict) -> str:
    """The exact value when bab or the MIP closed the interval, else the tightest certified bracket."""
    for method in ("bab", "mip"):
        if row[method]["status"] in ("optimal", "exact"):
            return f"{row[method]['upper']:.4g}"
    lows = [row[m]["lower"] for m in ("bab", "mip") if row[m]["lower"] is not None]
    ups = [row[m]["upper"] for m in ("bab", "mip") if row[m]["upper"] is not None]
    return f"[{max(lows, default=0.0):.4g}, {min(ups, default=math.inf):.4g}]"


def _solve_cost(exact: list[dict], method: str) -> str:
    """``solved/total, mean time`` and, when some stopped at the time limit, their largest relative gap."""
    solved = [row for row in exact if row[method]["status"] in ("optimal", "exact")]
    text = f"{len(solved)}/{len(exact)}, {_mean([row[method]['seconds'] for row in exact]):.2f} s"
    open_gaps = [1 - (row[method]["lower"] or 0.0) / row[method]["upper"] for row in exact
                 if row not in solved and row[method]["upper"]]
    return text + (f" (gap ≤ {100 * max(open_gaps):.0f}%)" if open_gaps else "")


def render_markdown(results: list[dict], header: dict, reading: str) -> str:
    settings = header["settings"]
    r = settings["radius"]
    sizes = "-".join(str(s) for s in [64, *settings["hidden"], 10])
    lines = [
        "# Training for cheap certification: accuracy, stability and the cost of exact solves",
        "",
        f"Written by `{header['command']}` ({header['environment']}); started {header['started']}. Every epoch's "
        "numbers are in [training_log.jsonl](training_log.jsonl) (a header line, one line per configuration and "
        "epoch, one per configuration with its exact solves; `--from-log` re-renders this page from it).",
        "",
        f"Setup: {sizes} ReLU MLPs trained in JAX (optax Adam, learning rate {settings['learning_rate']:g}, batch "
        f"{settings['batch']}, {settings['epochs']} epochs, seed {settings['seed']}, float32) on scikit-learn's digits, "
        "the split of the bundled network (pixels / 16, 20% stratified test set of 360 images). The regulariser and the "
        "penalty are `lipmip.jax.stability_regulariser` (Xiao et al. 2019's RS loss) and "
        f"`lipmip.jax.lipschitz_penalty(kind=\"interval\")` (the mean interval bound on ‖J‖ ℓ∞→ℓ∞) over ℓ∞ balls of "
        f"radius {r:g} around each training image of the batch.",
        "",
        f"Measured on each trained network in float64 over ℓ∞ balls of radius {r:g}: *stable %*, the certified share "
        f"of ReLUs that are stable over the ball (`lipmip.bounds.compute(net, Ball(x, {r:g}), \"linear\")`; mean over "
        f"the first {settings['stable_images']} test images) and the *unstable* ReLUs per ball (of "
        f"{sum(settings['hidden'])}); then, on the first {settings['bound_images']} test images, the Lipschitz constant "
        "of the margin f_top − f_runner-up (ℓ∞ input norm): *lower*, certified by `method=\"sample\"` (mean), *exact L* "
        "per image (from `method=\"bab\"` or `method=\"mip\"`, whichever closed the interval), the certified upper "
        "bounds *interval* and *naive* (means), and what the exact solve cost: images solved and mean wall-clock time of "
        f"`method=\"bab\"` (time limit {settings['bab_time']:g} s) and of `method=\"mip\"` (time limit "
        f"{settings['mip_time']:g} s; HiGHS, cross-checked by SCIP), with the largest remaining gap of the runs that "
        "hit the limit. Times are from a 2-core machine shared with other jobs: compare them within this table.",
        "",
        "| configuration | test acc. | stable % | unstable | lower | exact L | interval | naive | bab | MIP |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|---|",
    ]
    for res in results:
        f, exact = res["epochs"][-1], res["exact"]
        values = "; ".join(_exact_value(row) for row in exact)
        lines.append(
            f"| {res['config']} | {f['test_accuracy']:.3f} | {f['stable_pct']:.1f} | {f['unstable_relus']:.1f} | "
            f"{_mean(f['lower']):.1f} | {values} | {_mean(f['interval_upper']):.1f} | {_mean(f['naive_upper']):.0f} | "
            f"{_solve_cost(exact, 'bab')} | {_solve_cost(exact, 'mip')} |"
        )
    lines += ["", "Configurations:", ""]
    lines += [f"- `{res['config']}`: {res['description']} (trained in {res['train_seconds']:.0f} s, per-epoch "
              "evaluation included)." for res in results]
    checkpoints = sorted({e for e in (1, 5, 10, 20, settings["epochs"]) if e <= settings["epochs"]})
    lines += ["", "## Over training", "",
              "Test accuracy / certified stable % / mean certified lower and interval upper bound of the margin, "
              "at some epochs (all epochs in the log):", "",
              "| configuration | " + " | ".join(f"epoch {e}" for e in checkpoints) + " |",
              "|---|" + "---|" * len(checkpoints)]
    for res in results:
        by_epoch = {rec["epoch"]: rec for rec in res["epochs"]}
        cells = [f"{by_epoch[e]['test_accuracy']:.3f} / {by_epoch[e]['stable_pct']:.0f}% / "
                 f"[{_mean(by_epoch[e]['lower']):.0f}, {_mean(by_epoch[e]['interval_upper']):.0f}]"
                 if e in by_epoch else "–" for e in checkpoints]
        lines.append(f"| {res['config']} | " + " | ".join(cells) + " |")
    lines += ["", reading.rstrip() if reading else "## Reading\n\n(no reading written yet)", ""]
    return "\n".join(lines)


def read_log(path: Path) -> tuple[dict, list[dict]]:
    """The header and the per-configuration results of a study log."""
    header: dict = {}
    epochs: dict[str, list[dict]] = {}
    results = []
    with open(path) as log:
        for line in log:
            record = json.loads(line)
            if "study" in record:
                header = record["study"]
            elif "exact" in record:
                results.append({**record, "epochs": epochs.get(record["config"], [])})
            else:
                epochs.setdefault(record["config"], []).append(record)
    if not header:
        raise SystemExit(f"{path} has no header line: not a log of this script's study")
    return header, results


def _kept_reading(path: Path) -> str:
    """The hand-written reading of an earlier version of the file (from its '## Reading' heading on)."""
    if not path.exists():
        return ""
    text = path.read_text()
    at = text.find("## Reading")
    return text[at:] if at >= 0 else ""


def _environment() -> str:
    import platform

    import highspy  # noqa: F401
    import jax

    import lipmip

    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
            f"lipmip {lipmip.__version__}, jax {jax.__version__}")


def study(args: argparse.Namespace) -> None:
    """Train every configuration, log each epoch, measure the exact solves, write the markdown."""
    args.out_dir.mkdir(parents=True, exist_ok=True)
    markdown, log_path = args.out_dir / "training.md", args.out_dir / "training_log.jsonl"
    reading = _kept_reading(markdown)
    if args.from_log:
        header, results = read_log(args.from_log)
        markdown.write_text(render_markdown(results, header, reading))
        print(f"wrote {markdown} from {args.from_log}")
        return
    names = args.configs or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    settings = StudySettings(epochs=args.epochs, radius=args.radius, stable_images=args.stable_images,
                             bound_images=args.images, bab_time=args.bab_time, mip_time=args.mip_time,
                             hidden=tuple(args.hidden), seed=args.seed)
    data = digits_split(args.seed)
    header = {"command": "python scripts/train_digits.py --study" + (f" {args.argv_extra}" if args.argv_extra else ""),
              "environment": _environment(), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "settings": asdict(settings)}
    results = []
    with open(log_path, "w") as log:
        log.write(json.dumps({"study": header}) + "\n")
        for name in names:
            results.append(train_config(CONFIGS[name], settings, data, log))
            markdown.write_text(render_markdown(results, header, reading))  # partial results as they come
    print(f"wrote {markdown} and {log_path}")


if __name__ == "__main__":
    main()
