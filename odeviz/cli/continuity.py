"""``odeviz train continuity``: the ResNet and the ODE-Net of the Figure 1 page, headless."""
from __future__ import annotations

import argparse
import math
import sys

from .common import (
    EXIT_OK,
    EXIT_STOPPED,
    UsageError,
    add_solver_options,
    json_text,
    param_error,
    param_values,
    run_training,
)

# Command-line option → experiment param. Options left out keep the experiment's defaults.
CONTINUITY_OPTIONS = {
    "target": "target",
    "augment": "augment",
    "depth": "depth",
    "method": "method",
    "rtol": "rtol",
    "atol": "atol",
    "lr": "learning_rate",
    "seed": "seed",
    "adjoint": "adjoint",
}
OPTION_OF_PARAM = {param: option for option, param in CONTINUITY_OPTIONS.items()}


def add_parsers(commands, experiments) -> None:
    from ..experiments import ContinuityExperiment

    params = ContinuityExperiment.param
    parser = experiments.add_parser(
        "continuity",
        help="ResNet vs ODE-Net on a 1-D map (the paper's Figure 1)",
        description="Train a ResNet and an ODE-Net side by side on one scalar map and report loss and NFE.",
    )
    parser.add_argument("--iters", type=int, default=300, help="training iterations (default: 300)")
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of a summary")
    parser.add_argument("--target", choices=params.target.objects, default=None,
                        help=f"{params.target.doc} (default: {params.target.default})")
    parser.add_argument("--augment", action="store_true", default=None, help=params.augment.doc)
    parser.add_argument("--depth", type=int, default=None, help=f"{params.depth.doc} (default: {params.depth.default})")
    add_solver_options(parser, params)
    parser.set_defaults(run=_train_continuity)


def _train_continuity(args: argparse.Namespace) -> int:
    from ..experiments import ContinuityExperiment
    from ..numerics.device import configure_torch

    if args.iters < 1:
        raise UsageError(f"--iters must be at least 1, not {args.iters}")
    configure_torch()
    params = {param: getattr(args, option) for option, param in CONTINUITY_OPTIONS.items() if getattr(args, option) is not None}
    try:
        experiment = ContinuityExperiment(**params)
    except ValueError as error:
        raise UsageError(param_error(error, OPTION_OF_PARAM)) from None
    try:
        # Nobody looks at intermediate pictures here: draw only the final one.
        experiment.trainer.snapshot_interval = math.inf
        report = run_training(experiment, args.iters)
    finally:
        experiment.close()
    report = {"experiment": "continuity", **report, "params": param_values(experiment)}
    if args.json:
        print(json_text(report))
    else:
        print(_summary(report))
    if report.get("stopped_early"):
        print(f"odeviz: {report['message']}", file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_OK



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


