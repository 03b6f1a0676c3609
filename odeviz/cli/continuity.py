"""``odeviz train continuity``: the ResNet and the ODE-Net of the Figure 1 page, headless."""
from __future__ import annotations

import argparse
import math

from .common import (UsageError, add_export_option, add_file_options, add_knob_options, add_solver_options,
    experiment_from_args, export_folder, export_page, finish, param_values, run_training, save_run)


def add_parsers(commands, experiments) -> None:
    from ..experiments import ContinuityExperiment

    parser = experiments.add_parser(
        "continuity",
        help="ResNet vs ODE-Net on a 1-D map (the paper's Figure 1)",
        description="Train a ResNet and an ODE-Net side by side on one scalar map and report loss and NFE.",
    )
    parser.add_argument("--iters", type=int, default=300, help="training iterations (default: 300)")
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of a summary")
    add_file_options(parser)
    add_knob_options(parser, ContinuityExperiment)
    add_solver_options(parser, ContinuityExperiment)
    add_export_option(parser)
    parser.set_defaults(run=_train_continuity)


def _train_continuity(args: argparse.Namespace) -> int:
    from ..experiments import ContinuityExperiment
    from ..numerics.device import configure_torch

    if args.iters < 1:
        raise UsageError(f"--iters must be at least 1, not {args.iters}")
    folder = export_folder(args.export)
    configure_torch()
    experiment = experiment_from_args(ContinuityExperiment, args)
    try:
        # Nobody looks at intermediate pictures here: draw only the final one.
        experiment.trainer.snapshot_interval = math.inf
        report = run_training(experiment, args.iters)
        save_run(experiment, args)
        report["exported"] = export_page(experiment, "continuity", folder)
    finally:
        experiment.close()
    report = {"experiment": "continuity", **report, "params": param_values(experiment)}
    return finish(report, args.json, _summary)



def _summary(report: dict) -> str:
    p = report["params"]
    nfe_f, nfe_b = report["nfe_forward"], report["nfe_backward"]
    lines = [
        f"{report['experiment']}: {report['iterations']} iterations in {report['wall_time_seconds']:.1f} s "
        f"({report['iterations_per_second']:.1f} it/s)",
        f"  target {p['target']}{' (augmented)' if p['augment'] else ''}, ResNet depth {p['depth']}, "
        f"{p['method']} rtol={p['rtol']:g} atol={p['atol']:g}, adjoint {'on' if p['adjoint'] else 'off'}, "
        f"lr={p['learning_rate']:g}, seed {p['seed']}",
        f"  loss {report['final_loss']:.4g} (ODE-Net {report['final_loss_ode']:.4g}, "
        f"ResNet {report['final_loss_resnet']:.4g})",
    ]
    if nfe_f["last"] is not None:
        lines.append(
            f"  NFE forward mean {nfe_f['mean']:.1f} / max {nfe_f['max']} / last {nfe_f['last']}; "
            f"backward mean {nfe_b['mean']:.1f} / max {nfe_b['max']} / last {nfe_b['last']}"
        )
    return "\n".join(lines)


