"""``odeviz train classifier`` (the 2-D ODE-Net classifier, headless) and ``odeviz fig3`` (the paper's
Figure 3 measured on one: tolerance sweep, NFE-backward against forward, NFE over training, memory)."""
from __future__ import annotations

import argparse
import math

from .common import (UsageError, add_export_option, add_file_options, add_knob_options, add_solver_options,
    experiment_from_args, export_folder, export_page, finish, param_values, run_training, save_run)

STEP_COLUMNS = ("accepted_forward", "rejected_forward", "accepted_backward", "rejected_backward")


def _add_classifier_options(parser, experiment_class, default_iters: int) -> None:
    parser.add_argument("--iters", type=int, default=default_iters, help=f"training iterations (default: {default_iters})")
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of a summary")
    add_file_options(parser)
    add_knob_options(parser, experiment_class)
    add_solver_options(parser, experiment_class)
    add_export_option(parser)


def add_parsers(commands, experiments) -> None:
    from ..experiments import ClassifierExperiment, Figure3Experiment

    train = experiments.add_parser(
        "classifier", help="a 2-D ODE-Net classifier (moons, circles, spirals, xor, checkerboard)",
        description="Train an ODE-Net classifier on 2-D data and report accuracy, loss and NFE.",
    )
    _add_classifier_options(train, ClassifierExperiment, default_iters=300)
    train.set_defaults(run=_train_classifier)
    fig3 = commands.add_parser(
        "fig3", help="the paper's Figure 3 and the memory of backprop vs adjoint, measured on a classifier",
        description="Train a classifier with the adjoint, then sweep the tolerance 1e-1 … 1e-8 (NFE, error, time), "
                    "report NFE-forward/backward over training and the memory of direct backprop vs the adjoint.",
    )
    _add_classifier_options(fig3, Figure3Experiment, default_iters=200)
    fig3.set_defaults(run=_figure3)


def _experiment(cls, args: argparse.Namespace):
    from ..numerics.device import configure_torch

    if args.iters < 1:
        raise UsageError(f"--iters must be at least 1, not {args.iters}")
    args.export = export_folder(args.export)
    configure_torch()
    experiment = experiment_from_args(cls, args)
    experiment.trainer.snapshot_interval = math.inf  # nobody looks at intermediate pictures here
    return experiment


def _train_classifier(args: argparse.Namespace) -> int:
    from ..experiments import ClassifierExperiment

    experiment = _experiment(ClassifierExperiment, args)
    try:
        report = run_training(experiment, args.iters)
        save_run(experiment, args)
        report["exported"] = export_page(experiment, "classifier", args.export)
        snapshot = experiment.trainer.mailbox.latest()
    finally:
        experiment.close()
    if snapshot is not None:
        report.update(accuracy=snapshot.accuracy, loss_all_points=snapshot.loss)
    report = {"experiment": "classifier", **report, "params": param_values(experiment)}
    return finish(report, args.json, _classifier_summary)


def _classifier_summary(report: dict) -> str:
    p, nfe_f, nfe_b = report["params"], report["nfe_forward"], report["nfe_backward"]
    lines = [
        f"classifier: {report['iterations']} iterations in {report['wall_time_seconds']:.1f} s "
        f"({report['iterations_per_second']:.1f} it/s)",
        f"  {p['dataset']} ({p['samples']} points, noise {p['noise']:g}), augment {p['augment']}, width {p['width']}, "
        f"{p['method']} rtol={p['rtol']:g} atol={p['atol']:g}, adjoint {'on' if p['adjoint'] else 'off'}, "
        f"lr={p['learning_rate']:g}, penalty {p['regularization']:g}",
    ]
    if "accuracy" in report:
        lines.append(f"  accuracy {100 * report['accuracy']:.1f} % on all points, cross-entropy {report['loss_all_points']:.4g}")
    if nfe_f["last"] is not None:
        lines.append(f"  NFE forward mean {nfe_f['mean']:.1f} / max {nfe_f['max']} / last {nfe_f['last']}; "
                     f"backward mean {nfe_b['mean']:.1f} / max {nfe_b['max']} / last {nfe_b['last']}")
    return "\n".join(lines)


def _figure3(args: argparse.Namespace) -> int:
    from ..experiments import Figure3Experiment

    experiment = _experiment(Figure3Experiment, args)
    try:
        report = run_training(experiment, args.iters)
        save_run(experiment, args)
        experiment.trainer.wait_idle(600)  # the sweep of the final weights runs once training stops
        measured = experiment.measurements.latest()
        _, columns = experiment.trainer.history.since(0)
        history = {name: columns[name].tolist() if name in columns else [] for name in
                   ("iteration", "nfe_forward", "nfe_backward", *STEP_COLUMNS)}
        ratio = experiment.nfe_ratio()
        exported = export_page(experiment, "figure3", args.export)
    finally:
        experiment.close()
    sweep, memory, current = measured.sweep, measured.memory, measured.current
    report = {
        "experiment": "figure3",
        "iterations": report["iterations"],
        "iterations_per_second": report["iterations_per_second"],
        "swept_at_iteration": measured.iteration,
        # None when training stopped before there were weights to measure (e.g. --max-nfe too small).
        "a_b_tolerance_sweep": None if sweep is None else {
            "method": sweep.method, "tolerance": sweep.tolerances.tolist(), "nfe_forward": sweep.nfe_forward.tolist(),
            "error": sweep.error.tolist(), "wall_time_seconds": sweep.wall_time.tolist(),
            "wall_time_is_median_of": sweep.repeats, "wall_time_spread": sweep.wall_spread.tolist(),
            "seconds_per_evaluation": sweep.seconds_per_evaluation()[0], "machine_loaded": sweep.loaded,
        },
        "current_setting": None if current is None else {
            "rtol": current.solver.rtol, "atol": current.solver.atol, "nfe_forward": current.nfe_forward, "error": current.error,
            "wall_time_seconds": current.wall_time,
        },
        "c_nfe_backward_vs_forward": {
            "nfe_forward": history["nfe_forward"], "nfe_backward": history["nfe_backward"],
            "mean_ratio": None if math.isnan(ratio) else ratio,
            "steps_accepted_rejected": {name: history[name] for name in STEP_COLUMNS},
            "adjoint_now": _adjoint_report(measured.adjoint),
            "tradeoff_by_backward_tolerance": [_adjoint_report(cost) for cost in measured.tradeoff],
        },
        "d_nfe_over_training": {"iteration": history["iteration"], "nfe_forward": history["nfe_forward"]},
        "memory": None if memory is None else {
            "method": memory.method, "batch": memory.batch, "steps": memory.steps.tolist(),
            "direct_bytes": memory.direct_bytes.tolist(), "adjoint_bytes": memory.adjoint_bytes.tolist(),
        },
        "params": param_values(experiment),
        "exported": exported,
    }
    if experiment.trainer.message:
        report.update(stopped_early=True, message=experiment.trainer.message)
    return finish(report, args.json, _figure3_summary)


def _adjoint_report(cost) -> dict | None:
    """One adjoint gradient's cost (evaluations, accepted/rejected steps) and its error against backprop at 1e-10."""
    if cost is None:
        return None
    solver = cost.solver
    return {"rtol": solver.rtol, "atol": solver.atol, "adjoint_rtol": solver.adjoint_rtol or solver.rtol,
            "adjoint_atol": solver.adjoint_atol or solver.atol, "nfe_forward": cost.nfe_forward,
            "nfe_backward": cost.nfe_backward, "ratio": cost.ratio,
            "steps_forward": cost.steps_forward._asdict(), "steps_backward": cost.steps_backward._asdict(),
            "gradient_error": cost.gradient_error}


def _figure3_summary(report: dict) -> str:
    sweep, ratio, memory = report["a_b_tolerance_sweep"], report["c_nfe_backward_vs_forward"], report["memory"]
    lines = [f"figure3: {report['iterations']} training iterations"]
    if sweep is not None:
        lines[0] += f", tolerance sweep of the final weights ({sweep['method']}, error against dopri8 at 1e-12)"
        lines.append("  tolerance   NFE-F   error      time")
        for tolerance, nfe, error, wall in zip(sweep["tolerance"], sweep["nfe_forward"], sweep["error"], sweep["wall_time_seconds"]):
            lines.append(f"  {tolerance:9.0e}   {nfe:5.0f}   {error:9.2e}  {1e3 * wall:6.2f} ms")
    if ratio["mean_ratio"] is not None:
        lines.append(f"  NFE-backward / NFE-forward over training: {ratio['mean_ratio']:.2f} (the paper: about 0.5)")
    for cost in ratio["tradeoff_by_backward_tolerance"]:
        f, b = cost["steps_forward"], cost["steps_backward"]
        lines.append(f"    backward tolerance {cost['adjoint_rtol']:.0e}/{cost['adjoint_atol']:.0e}: ratio {cost['ratio']:.2f}, "
                     f"steps accepted/rejected forward {f['accepted']}/{f['rejected']}, backward {b['accepted']}/{b['rejected']}, "
                     f"gradient error {cost['gradient_error']:.1e}")
    if memory is not None:
        lines.append(f"  memory kept for backward ({memory['method']}, batch {memory['batch']}):")
        for steps, direct, adjoint in zip(memory["steps"], memory["direct_bytes"], memory["adjoint_bytes"]):
            lines.append(f"    {steps:4d} steps: through the solver {direct / 1024:9.1f} KiB, adjoint {adjoint / 1024:5.1f} KiB")
    return "\n".join(lines)
