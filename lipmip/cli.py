"""The ``lipmip`` command line: a thin layer over the Python API.

Every :class:`~lipmip.errors.LipmipError` becomes one line on stderr and exit
status 1; argument mistakes exit with status 2 (argparse).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

import lipmip
from lipmip.api import METHODS, accepted_options, default_query
from lipmip.domains import Ball, Box, Region
from lipmip.errors import InvalidQueryError, InvalidRegionError, LipmipError
from lipmip.io.data import load_points
from lipmip.network import Network
from lipmip.norms import norm_name
from lipmip.progress import SolveProgress
from lipmip.query import Query
from lipmip.reporting.cli import add_report_command
from lipmip.robustness.cli import add_certify_command

__all__ = ["main", "build_parser"]


# ---------------------------------------------------------------------------- input parsing
def _numbers(text: str, what: str) -> np.ndarray:
    try:
        return np.array([float(t) for t in text.split(",") if t.strip()], dtype=np.float64)
    except ValueError:
        raise InvalidRegionError(f"{what}: expected numbers separated by commas, got {text!r}") from None


def _number_or_ratio(text: str) -> float:
    """``0.5`` or ``1/255`` (argparse type)."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a ratio such as 1/255, got {text!r}") from None


def _point(spec: str, index: int | None, scale: float, dim: int) -> np.ndarray:
    """A point from a comma list of numbers or a data file (row ``index``)."""
    if Path(spec).suffix.lower() in (".npy", ".npz", ".csv"):
        X, _ = load_points(spec)
        row = 0 if index is None else index
        if not 0 <= row < X.shape[0]:
            raise InvalidRegionError(f"--index {row} is out of range: {spec} holds {X.shape[0]} points")
        x = X[row]
    else:
        if index is not None:
            raise InvalidRegionError("--index applies only when --center is a data file")
        x = _numbers(spec, "--center")
        if x.size == 1 and dim > 1:
            x = np.full(dim, x[0])
    return x * scale


def _region(args: argparse.Namespace, net: Network) -> Region:
    if args.box is not None and args.center is not None:
        raise InvalidRegionError("give either --box or --center/--radius, not both")
    if args.clip is not None and args.center is None:
        raise InvalidRegionError("--clip applies to a ball given by --center/--radius")
    if args.box is not None:
        lo, hi = (_numbers(t, "--box") for t in args.box)
        lo = np.full(net.input_dim, lo[0]) if lo.size == 1 else lo
        hi = np.full(net.input_dim, hi[0]) if hi.size == 1 else hi
        region: Region = Box(lo, hi)
    elif args.center is not None:
        if args.radius is None:
            raise InvalidRegionError("--center needs --radius")
        region = Ball(_point(args.center, args.index, args.scale, net.input_dim), args.radius, args.ball)
        if args.clip is not None:
            region = region.clip(*args.clip)
    else:
        raise InvalidRegionError("give an input region: --box LO HI, or --center X --radius R")
    region.check_network(net)
    return region


def _vector(spec: str, what: str) -> np.ndarray:
    """A vector from a comma list of numbers or a ``.npy`` / ``.txt`` file."""
    suffix = Path(spec).suffix.lower()
    if suffix in (".npy", ".txt"):
        try:
            values = np.load(spec, allow_pickle=False) if suffix == ".npy" else np.loadtxt(spec, ndmin=1)
        except (OSError, ValueError) as exc:
            raise InvalidQueryError(f"{what}: cannot read {spec}: {exc}") from None
        return np.asarray(values, dtype=np.float64).reshape(-1)
    try:
        return np.array([float(t) for t in spec.split(",") if t.strip()], dtype=np.float64)
    except ValueError:
        raise InvalidQueryError(f"{what}: expected numbers separated by commas or a .npy/.txt file, got {spec!r}") from None


def _query(args: argparse.Namespace, net: Network, region: Region) -> Query:
    norm = args.input_norm if args.input_norm is not None else getattr(region, "p", "inf")
    chosen = [flag for flag, value in (("--c", args.c), ("--logit", args.logit), ("--margin", args.margin))
              if value is not None]
    if len(chosen) > 1:
        raise InvalidQueryError(f"give one of --c, --logit, --margin, not {' and '.join(chosen)}")
    if args.versus is not None and args.logit is None:
        raise InvalidQueryError("--versus J needs --logit I (it bounds f_I - f_J)")
    if args.output_norm is not None:
        if chosen:
            raise InvalidQueryError(f"--output-norm bounds the whole Jacobian; {chosen[0]} asks for a scalar function")
        return Query.vector(norm, args.output_norm)
    if args.c is not None:
        c = _vector(args.c, "--c")
        if c.size != net.output_dim:
            raise InvalidQueryError(f"--c has {c.size} entries but the network has {net.output_dim} outputs")
        return Query.scalar(c, norm)
    if args.logit is not None:
        if args.versus is not None:
            return Query.margin(args.logit, args.versus, net.output_dim, norm)
        return Query.output(args.logit, net.output_dim, norm)
    if args.margin is not None:
        if args.margin == "top2":
            if not isinstance(region, Ball):
                raise InvalidQueryError("--margin top2 needs a ball (it uses the prediction at the centre)")
            order = np.argsort(-net(region.center))
            return Query.margin(int(order[0]), int(order[1]), net.output_dim, norm)
        parts = args.margin.split(",")
        try:
            i, j = (int(p) for p in parts)
        except ValueError:
            raise InvalidQueryError(f"--margin expects I,J or top2, got {args.margin!r}") from None
        return Query.margin(i, j, net.output_dim, norm)
    return default_query(net, region, norm)


# ---------------------------------------------------------------------------- commands
def _cmd_info(args: argparse.Namespace) -> int:
    net = lipmip.load(args.model)
    region = _region(args, net) if (args.box is not None or args.center is not None) else None
    forward = grads = None
    if region is not None:
        from lipmip.bounds import compute
        from lipmip.bounds.backward import gradient_bounds

        options = {"time_limit": args.time_limit} if args.bounds == "lp" and args.time_limit else {}
        forward = compute(net, region, args.bounds, **options)
        grads = gradient_bounds(forward, np.eye(net.output_dim))
    if args.json:
        out = _network_dict(net)
        if forward is not None:
            from lipmip.bounds.stability import stability_table

            out["region"] = region.to_dict()
            out["bounds"] = {"method": forward.method, "seconds": forward.seconds,
                             "unstable": forward.num_unstable, "relus": forward.num_relus,
                             "layers": stability_table(forward, grads)}
        print(json.dumps(out, indent=2))
        return 0
    print(f"model: {args.model}")
    print(net.summary())
    if forward is not None:
        from lipmip.bounds.stability import format_stability

        print()
        print(f"stability over the {_describe_region(region)}:")
        print(format_stability(forward, grads))
    return 0


def _network_dict(net: Network) -> dict:
    return {
        "name": net.name,
        "input_dim": net.input_dim,
        "input_shape": list(net.input_shape),
        "output_dim": net.output_dim,
        "widths": list(net.widths),
        "activations": list(net.activations),
        "parameters": net.num_parameters,
        "relus": net.num_relus,
    }


def _cmd_bound(args: argparse.Namespace) -> int:
    net = lipmip.load(args.model)
    region = _region(args, net)
    query = _query(args, net, region)
    given = {"samples": args.samples, "seed": args.seed, "max_regions": args.max_regions, "time_limit": args.time_limit,
             "solver": args.solver, "encoding": args.encoding, "bounds": args.bounds, "partitions": args.partitions,
             "rescale": args.rescale, "formulation": args.formulation,
             "node_limit": args.node_limit, "workers": args.workers, "race": args.race or None,
             "restarts": args.restarts, "steps": args.steps, "dtype": args.dtype, "walk": args.walk or None,
             "batches": args.batches, "local": False if args.global_bound else None}
    accepted = accepted_options(args.method)
    options = {k: v for k, v in given.items() if v is not None and k in accepted}
    with SolveProgress(args.method) as progress:
        if "progress" in accepted:
            options["progress"] = progress
        result = lipmip.lipschitz(net, region, query, method=args.method, **options)
    if args.json:
        out = {"model": str(args.model), "network": _network_dict(net), **result.to_dict(include_witness=args.witness)}
        print(json.dumps(out, indent=2))
        return 0
    print(f"model:  {args.model}  ({'-'.join(map(str, net.widths))}, {net.num_relus} ReLUs)")
    print(f"region: {_describe_region(region)}")
    print(f"query:  {query.describe()}")
    if result.lower is None:
        print("lower:  -")
    else:
        source = result.details.get("lower_from") or result.method
        print(f"lower:  {result.lower:.10g}   (a pair of points in the region proves it; {source})")
    if result.upper is None:
        print("upper:  -")
    else:
        print(f"upper:  {result.upper:.10g}   ({result.details.get('upper_from') or result.method})")
    if result.estimate is not None:
        print(f"estimate (not certified): {result.estimate:.6g}")
    print(f"status: {result.status}   method: {result.method}   time: {result.seconds:.3f} s")
    return 0


def _describe_region(region: Region) -> str:
    if isinstance(region, Ball):
        return f"l{norm_name(region.p)} ball of radius {region.radius:g} around a point in R^{region.dim}"
    assert isinstance(region, Box)
    return (f"box in R^{region.dim}, lo in [{region.lo.min():g}, {region.lo.max():g}], "
            f"hi in [{region.hi.min():g}, {region.hi.max():g}]")


# ---------------------------------------------------------------------------- parser
def _add_region_arguments(parser: argparse.ArgumentParser, title: str) -> None:
    where = parser.add_argument_group(title)
    where.add_argument("--box", nargs=2, metavar=("LO", "HI"), help="a box: numbers or comma lists")
    where.add_argument("--center", metavar="X", help="ball centre: comma list, or a .npy/.npz/.csv data file")
    where.add_argument("--index", type=int, help="row of the data file given to --center (default 0)")
    where.add_argument("--scale", type=_number_or_ratio, default=1.0,
                       help="multiply the centre by this, a number or a ratio (e.g. 1/255 for pixels)")
    where.add_argument("--radius", type=float, help="ball radius")
    where.add_argument("--ball", default="inf", help="ball norm: inf, 2 or 1 (default inf)")
    where.add_argument("--clip", nargs=2, type=float, metavar=("LO", "HI"),
                       help="intersect an inf-ball with the box [LO, HI] (e.g. 0 1 for pixels); gives a box")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lipmip", description="Certified Lipschitz bounds for ReLU networks.")
    parser.add_argument("--version", action="version", version=f"lipmip {lipmip.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe a model; with a region, also its neuron stability")
    info.add_argument("model", help="model file (.npz, .onnx, .onnx.gz, .pt)")
    _add_region_arguments(info, "input region for the stability report (optional)")
    info.add_argument("--bounds", default="linear", choices=["interval", "linear", "lp"],
                      help="neuron bound method for the stability report (default linear)")
    info.add_argument("--time-limit", type=float, metavar="S",
                      help="seconds for --bounds lp (neurons not reached keep valid, looser bounds)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_cmd_info)

    bound = sub.add_parser("bound", help="certified lower/upper bounds on a local Lipschitz constant")
    bound.add_argument("model", help="model file (.npz, .onnx, .onnx.gz, .pt)")
    _add_region_arguments(bound, "input region (one of)")
    what = bound.add_argument_group("what to bound")
    what.add_argument("--input-norm", "--norm", dest="input_norm", metavar="inf|1|2",
                      help="input norm (default: the ball's norm, inf for a box)")
    what.add_argument("--output-norm", metavar="inf|1|2",
                      help="bound the Jacobian's operator norm input-norm -> output-norm (equal norms)")
    what.add_argument("--c", metavar="VEC", help="bound c.f, one entry per output: a comma list "
                      "(write --c=-1,... when it starts with -) or a .npy/.txt file")
    what.add_argument("--logit", "--output", dest="logit", type=int, metavar="I", help="bound output I alone")
    what.add_argument("--versus", type=int, metavar="J", help="with --logit I: bound the logit difference f_I - f_J")
    what.add_argument("--margin", metavar="I,J|top2", help="bound f_I - f_J; top2: predicted class minus runner-up at the centre")
    how = bound.add_argument_group("method")
    how.add_argument("--method", default="auto", choices=list(METHODS), help="bound method (default auto)")
    how.add_argument("--samples", type=int, default=2000, help="sampled points for the lower bound (sample, auto)")
    how.add_argument("--seed", type=int, default=0)
    how.add_argument("--restarts", type=int, metavar="N", help="parallel ascent runs (ascent; default 64)")
    how.add_argument("--steps", type=int, metavar="N", help="steps of each ascent run (ascent; default 150)")
    how.add_argument("--walk", action="store_true",
                     help="sample: walk from the best points to neighbouring activation regions (ascent always walks)")
    how.add_argument("--dtype", choices=["float32", "float64"],
                     help="JAX precision for ranking points (sample, ascent, clever; the bound is float64 anyway)")
    how.add_argument("--batches", type=int, metavar="N", help="batches of sampled maxima for the CLEVER fit (clever; default 50)")
    how.add_argument("--max-regions", type=int, help="stop enumerate after this many activation regions (default 10000)")
    how.add_argument("--time-limit", type=float, metavar="S", help="seconds (auto, enumerate, mip, bab)")
    how.add_argument("--node-limit", type=int, metavar="N", help="nodes to split before stopping (bab)")
    how.add_argument("--workers", type=int, metavar="N",
                     help="processes sharing the branch and bound (bab, auto; default 1); the value does not depend on it")
    how.add_argument("--race", action="store_true",
                     help="auto: run the MIP in a second process beside the branch and bound; the first to close wins")
    how.add_argument("--solver", choices=["auto", "highs", "scip", "gurobi", "barrier", "clarabel", "scs"],
                     help="solver: highs, scip, gurobi for mip; barrier, clarabel, scs for lipsdp (default auto)")
    how.add_argument("--global", dest="global_bound", action="store_true",
                     help="lipsdp: the global bound (slopes in [0, 1] everywhere), valid for every region")
    how.add_argument("--encoding", choices=["bigm", "partition"], help="ReLU encoding (mip; default bigm)")
    how.add_argument("--partitions", type=int, metavar="P", help="groups per neuron for --encoding partition (default 2)")
    how.add_argument("--formulation", choices=["lipmip", "miqcqp-upper", "miqcqp-lower"],
                     help="MIP formulation (mip; default lipmip; the MIQCQP ones need SCIP or Gurobi)")
    how.add_argument("--rescale", choices=["weights", "big_m"],
                     help="solve on an equivalent rescaled network (mip; default: no rescaling)")
    how.add_argument("--bounds", choices=["interval", "linear", "lp"], help="neuron bounds (mip, interval; default linear)")
    bound.add_argument("--json", action="store_true", help="print the result as JSON")
    bound.add_argument("--witness", action="store_true", help="include the witness points in the JSON")
    bound.set_defaults(func=_cmd_bound)
    add_certify_command(sub)
    add_report_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LipmipError as exc:
        print(f"lipmip: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lipmip: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `lipmip info ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
