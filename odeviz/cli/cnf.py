"""``odeviz train cnf``: a continuous normalizing flow (and planar flows) on a 2-D density, headless."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import (UsageError, add_export_option, add_file_options, add_knob_options, add_solver_options,
    experiment_from_args, export_folder, export_page, finish, finite_float, param_values, run_training, save_run)


def add_parsers(commands, experiments) -> None:
    from ..data.densities import DENSITY_TARGETS
    from ..experiments import CNFExperiment

    parser = experiments.add_parser(
        "cnf",
        help="a continuous normalizing flow on a 2-D density (the paper's Figures 4-5)",
        description="Train a CNF by maximum likelihood on a 2-D density (planar flows beside it with "
        "--compare-planar); report the held-out negative log-likelihood (fresh points, tight-tolerance solve), speed "
        "and NFE. By default it trains with RNODE regularisation and four RK4 steps, Adam with a cosine schedule "
        "over the run (over --iters, or over --max-seconds if that ends first).",
    )
    parser.add_argument("--data", required=True, metavar="NAME_OR_PATH",
                        help=f"a density ({', '.join(DENSITY_TARGETS)}) or a .npy/.csv file of N×2 points")
    parser.add_argument("--iters", type=int, default=500, help="training iterations (default: 500)")
    parser.add_argument("--max-seconds", type=finite_float, default=None, help="stop training after this many seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of a summary")
    add_file_options(parser)  # odeviz.load(PATH) reads the CNF of a saved run too
    add_knob_options(parser, CNFExperiment, decay_iterations={
        "metavar": "ITERS", "help": "iterations over which the learning rate falls along a cosine (default: --iters; 0: constant)"})
    add_solver_options(parser, CNFExperiment)
    add_export_option(parser)
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
    folder = export_folder(args.export)
    configure_torch()
    schedule = {} if args.decay_iterations is not None else {"decay_iterations": args.iters}
    experiment = experiment_from_args(CNFExperiment, args, **schedule, **_data_params(args.data))
    try:
        experiment.trainer.pictures = False  # nobody looks at them here
        experiment.decay_seconds = args.max_seconds  # the schedule ends when the time does
        report = run_training(experiment, args.iters, args.max_seconds)
        held_out = experiment.held_out_nll()
        last_rate = experiment.optimizer.param_groups[0]["lr"]
        save_run(experiment, args)
        exported = export_page(experiment, "cnf", folder)
    finally:
        experiment.close()
    values = param_values(experiment)
    values["points"] = None if values["points"] is None else f"{len(values['points'])} points"
    report = {
        "experiment": "cnf", "data": args.data, **report,
        "held_out_nll": held_out["cnf"],
        "held_out_nll_planar": {name.removeprefix("planar_"): value for name, value in held_out.items()
                                if name != "cnf" and experiment.compare_planar},
        "held_out_points": len(experiment.source.held_out()),
        "final_learning_rate": last_rate,
        "saved": str(args.save) if args.save is not None else None,
        "exported": exported,
        "params": values,
    }
    return finish(report, args.json, _summary)


def _summary(report: dict) -> str:
    p, nfe_f = report["params"], report["nfe_forward"]
    planar = ", ".join(f"K = {k}: {v:.3f}" for k, v in report["held_out_nll_planar"].items())
    lines = [
        f"cnf on {report['data']}: {report['iterations']} iterations in {report['wall_time_seconds']:.1f} s "
        f"({report['iterations_per_second']:.1f} it/s)",
        f"  width {p['width']}, depth {p['depth']}, trace {p['trace']}, {_solver_text(p)}, adjoint {'on' if p['adjoint'] else 'off'}, lr={p['learning_rate']:g}, seed {p['seed']}",
        f"  held-out NLL {report['held_out_nll']:.4f} nats ({report['held_out_points']} points)"
        + (f"; planar {planar}" if planar else ""),
    ]
    if nfe_f["last"] is not None:
        lines.append(f"  NFE forward mean {nfe_f['mean']:.1f} / max {nfe_f['max']} / last {nfe_f['last']}")
    if report["saved"]:
        lines.append(f"  saved to {report['saved']}: odeviz.load({report['saved']!r})")
    return "\n".join(lines)


def _solver_text(p: dict) -> str:
    from ..numerics.methods import ADAPTIVE_METHODS

    if p["method"] in ADAPTIVE_METHODS:
        return f"{p['method']} rtol={p['rtol']:g} atol={p['atol']:g}"
    return f"{p['method']} × {p['fixed_steps']} steps (pictures: dopri5 rtol={p['rtol']:g} atol={p['atol']:g})"
