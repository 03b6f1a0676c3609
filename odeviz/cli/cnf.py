"""``odeviz train cnf``: a continuous normalizing flow (and planar flows) on a 2-D density, headless."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .common import (
    EXIT_OK,
    EXIT_STOPPED,
    RunFailed,
    UsageError,
    add_solver_options,
    finite_float,
    json_text,
    param_error,
    param_values,
    run_training,
    writable_file,
)

# Command-line option → experiment param. Options left out keep the experiment's defaults.
CNF_OPTIONS = {
    "width": "width",
    "depth": "depth",
    "trace": "trace",
    "batch_size": "batch_size",
    "regularization": "regularization",
    "method": "method",
    "rtol": "rtol",
    "atol": "atol",
    "lr": "learning_rate",
    "lr_decay": "decay_iterations",
    "seed": "seed",
    "adjoint": "adjoint",
}
OPTION_OF_PARAM = {param: option.replace("_", "-") for option, param in CNF_OPTIONS.items()}


def add_parsers(commands, experiments) -> None:
    from ..data.densities import DENSITY_TARGETS
    from ..experiments import CNFExperiment

    params = CNFExperiment.param
    parser = experiments.add_parser(
        "cnf",
        help="a continuous normalizing flow on a 2-D density (the paper's Figures 4-5)",
        description="Train a CNF (and planar flows beside it) by maximum likelihood on a 2-D density; report "
        "the held-out negative log-likelihood (fresh points, tight-tolerance solve), speed and NFE.",
    )
    parser.add_argument("--data", required=True, metavar="NAME_OR_PATH",
                        help=f"a density ({', '.join(DENSITY_TARGETS)}) or a .npy/.csv file of N×2 points")
    parser.add_argument("--iters", type=int, default=500, help="training iterations (default: 500)")
    parser.add_argument("--max-seconds", type=finite_float, default=None, help="stop training after this many seconds")
    parser.add_argument("--save", type=Path, default=None, metavar="PATH",
                        help="save the trained CNF here (load it with odeviz.load(PATH))")
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of a summary")
    parser.add_argument("--width", type=int, default=None, help=f"{params.width.doc} (default: {params.width.default})")
    parser.add_argument("--depth", type=int, default=None, help=f"{params.depth.doc} (default: {params.depth.default})")
    parser.add_argument("--trace", choices=params.trace.objects, default=None,
                        help=f"{params.trace.doc} (default: {params.trace.default})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"{params.batch_size.doc} (default: {params.batch_size.default})")
    parser.add_argument("--regularization", type=finite_float, default=None,
                        help=f"{params.regularization.doc} (default: {params.regularization.default:g})")
    parser.add_argument("--lr-decay", type=int, default=None, metavar="ITERS",
                        help=f"{params.decay_iterations.doc} (default: {params.decay_iterations.default})")
    add_solver_options(parser, params)
    parser.set_defaults(run=_train_cnf)


def _data_params(data: str) -> dict:
    """``--data`` as experiment params: a named density, or the points of a file."""
    from ..data.densities import DENSITY_TARGETS, read_points

    if data in DENSITY_TARGETS:
        return {"target": data}
    if not Path(data).exists():
        raise UsageError(f"--data {data!r} is neither a known density ({', '.join(DENSITY_TARGETS)}) nor an existing file")
    try:
        points = read_points(data)
    except ValueError as error:
        raise UsageError(f"--data: {error}") from None
    return {"target": "file", "points": points, "source_name": Path(data).name}


def _train_cnf(args: argparse.Namespace) -> int:
    from ..experiments import CNFExperiment
    from ..numerics.device import configure_torch

    if args.iters < 1:
        raise UsageError(f"--iters must be at least 1, not {args.iters}")
    if args.max_seconds is not None and args.max_seconds <= 0:
        raise UsageError(f"--max-seconds must be positive, not {args.max_seconds:g}")
    if args.save is not None:
        writable_file("--save", args.save)
    configure_torch()
    params = {param: getattr(args, option) for option, param in CNF_OPTIONS.items() if getattr(args, option) is not None}
    params.update(_data_params(args.data))
    try:
        experiment = CNFExperiment(**params)
    except ValueError as error:
        raise UsageError(param_error(error, OPTION_OF_PARAM)) from None
    try:
        experiment.trainer.snapshot_interval = math.inf  # nobody looks at pictures here
        report = run_training(experiment, args.iters, args.max_seconds)
        held_out = experiment.held_out_nll()
        if args.save is not None:
            try:
                experiment.save(args.save)
            except (OSError, RuntimeError) as error:  # e.g. the disk filled up during training
                raise RunFailed(f"trained, but could not save the model to {str(args.save)!r}: {error}") from None
    finally:
        experiment.close()
    values = param_values(experiment)
    values["points"] = None if values["points"] is None else f"{len(values['points'])} points"
    report = {
        "experiment": "cnf", "data": args.data, **report,
        "held_out_nll": held_out["cnf"],
        "held_out_nll_planar": {name.removeprefix("planar_"): value for name, value in held_out.items() if name != "cnf"},
        "held_out_points": len(experiment.source.held_out()),
        "saved": str(args.save) if args.save is not None else None,
        "params": values,
    }
    print(json_text(report) if args.json else _summary(report))
    if report.get("stopped_early"):
        print(f"odeviz: {report['message']}", file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_OK


def _summary(report: dict) -> str:
    p, nfe_f = report["params"], report["nfe_forward"]
    planar = ", ".join(f"K = {k}: {v:.3f}" for k, v in report["held_out_nll_planar"].items())
    lines = [
        f"cnf on {report['data']}: {report['iterations']} iterations in {report['wall_time_seconds']:.1f} s "
        f"({report['iterations_per_second']:.1f} it/s)",
        f"  width {p['width']}, depth {p['depth']}, trace {p['trace']}, {p['method']} rtol={p['rtol']:g} "
        f"atol={p['atol']:g}, adjoint {'on' if p['adjoint'] else 'off'}, lr={p['learning_rate']:g}, seed {p['seed']}",
        f"  held-out NLL {report['held_out_nll']:.4f} nats ({report['held_out_points']} points); planar {planar}",
    ]
    if nfe_f["last"] is not None:
        lines.append(f"  NFE forward mean {nfe_f['mean']:.1f} / max {nfe_f['max']} / last {nfe_f['last']}")
    if report["saved"]:
        lines.append(f"  saved to {report['saved']}: odeviz.load({report['saved']!r})")
    return "\n".join(lines)
