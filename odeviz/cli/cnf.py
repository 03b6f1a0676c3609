"""``odeviz train cnf``: a continuous normalizing flow (and planar flows) on a 2-D density, headless."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from .common import (UsageError, add_file_options, add_knob_options, add_solver_options, experiment_from_args, finish,
    finite_float, param_values, run_training, save_run)


def add_parsers(commands, experiments) -> None:
    from ..data.densities import DENSITY_TARGETS
    from ..experiments import CNFExperiment

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
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of a summary")
    add_file_options(parser)  # odeviz.load(PATH) reads the CNF of a saved run too
    add_knob_options(parser, CNFExperiment, decay_iterations={"metavar": "ITERS"})
    add_solver_options(parser, CNFExperiment)
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
    configure_torch()
    experiment = experiment_from_args(CNFExperiment, args, **_data_params(args.data))
    try:
        experiment.trainer.snapshot_interval = math.inf  # nobody looks at pictures here
        report = run_training(experiment, args.iters, args.max_seconds)
        held_out = experiment.held_out_nll()
        save_run(experiment, args)
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
    return finish(report, args.json, _summary)


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
