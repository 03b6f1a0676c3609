"""``odeviz train supervised`` (one model of the paper's Table 1) and ``odeviz table1`` (the whole table)."""
from __future__ import annotations

import argparse
import math

import numpy as np

from .common import (add_export_option, add_file_options, add_knob_options, add_solver_options, experiment_from_args,
    export_folder, export_page, finish, param_values, run_training, save_run)


def _add_options(parser) -> None:
    from ..data.digits import MNIST_DIR_VARIABLE
    from ..experiments import Table1Experiment

    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of a table")
    add_file_options(parser)
    add_knob_options(parser, Table1Experiment, mnist_dir={
        "metavar": "DIR", "help": f"train and test on MNIST IDX files in DIR (default: ${MNIST_DIR_VARIABLE}, "
                                  "else scikit-learn's bundled 8×8 digits)"})
    add_solver_options(parser, Table1Experiment)
    add_export_option(parser)


def add_parsers(commands, experiments) -> None:
    from ..experiments.table1 import MODELS

    one = experiments.add_parser(
        "supervised", aliases=["table1"], help="one model of the paper's Table 1 on handwritten digits",
        description="Train one of the Table 1 models on digits and report its row: test error, parameters, "
                    "activation memory, seconds per epoch, NFE.",
    )
    one.add_argument("--model", choices=MODELS, required=True, help="which model to train")
    _add_options(one)
    one.set_defaults(run=_train)
    table = commands.add_parser(
        "table1", help="the paper's Table 1: train MLP, ResNet, RK-Net and ODE-Net and print the table",
        description="Train the four Table 1 models one after another on digits and print the table beside the paper's.",
    )
    _add_options(table)
    table.set_defaults(run=_train, model=None)


def _train(args: argparse.Namespace) -> int:
    from ..data.digits import mnist_dir_from_environment
    from ..experiments import Table1Experiment
    from ..experiments.table1 import MODELS
    from ..numerics.device import configure_torch

    folder = export_folder(args.export)
    configure_torch()
    if args.mnist_dir is None:
        args.mnist_dir = mnist_dir_from_environment()
    experiment = experiment_from_args(Table1Experiment, args, models=[args.model] if args.model else list(MODELS))
    try:
        experiment.trainer.snapshot_interval = math.inf  # only the final picture is read
        report = run_training(experiment, experiment.total_iterations())
        save_run(experiment, args)
        experiment.trainer.refresh()
        experiment.trainer.wait_idle()
        snapshot = experiment.trainer.mailbox.latest()
        exported = export_page(experiment, "table1", folder)
    finally:
        experiment.close()
    rows = [_row_report(row, experiment.seed) for row in snapshot.rows]
    report = {
        "experiment": "supervised" if args.model else "table1",
        "dataset": snapshot.dataset, "train_size": snapshot.train_size, "test_size": snapshot.test_size,
        "batch_size": snapshot.memory.batch_size,
        "rows": rows, **{k: v for k, v in report.items() if k in ("iterations", "wall_time_seconds", "stopped_early", "message")},
        "params": {k: v for k, v in param_values(experiment).items() if k not in ("models", "digit")},
        "exported": exported,
    }
    return finish(report, args.json, _table)


def _row_report(row, seed: int) -> dict:
    nan_to_none = lambda value: None if math.isnan(value) else float(value)  # JSON has no NaN
    return {
        "model": row.key, "label": row.label, "epochs": row.epochs_done,
        "test_error_percent": nan_to_none(row.test_error), "params": row.params,
        "activation_bytes": row.activation_bytes, "seconds_per_epoch": nan_to_none(row.seconds_per_epoch),
        "nfe_forward": nan_to_none(row.nfe_forward), "nfe_backward": nan_to_none(row.nfe_backward),
        "test_error_per_epoch": [float(e) for e in row.test_errors],
        # One row per seed (seed, seed + 1, …: initial weights and batch order), then their aggregate.
        "seeds": [{"seed": seed + i, "test_error_percent": float(e)} for i, e in enumerate(row.seed_errors)],
        "test_error_mean": nan_to_none(float(np.mean(row.seed_errors))) if len(row.seed_errors) else None,
        "test_error_std": nan_to_none(row.test_error_std),
        "test_error_min": float(np.min(row.seed_errors)) if len(row.seed_errors) else None,
        "test_error_max": float(np.max(row.seed_errors)) if len(row.seed_errors) else None,
        "paper": {"test_error_percent": row.paper.test_error, "params": row.paper.params,
                  "memory": row.paper.memory, "time": row.paper.time},
    }


def _table(report: dict) -> str:
    def number(value, text):
        return "–" if value is None else text.format(value)

    def error(row):
        if row["test_error_std"] is None:
            return number(row["test_error_percent"], "{:.2f} %")
        return f"{row['test_error_mean']:.2f} ± {row['test_error_std']:.2f} % ({row['test_error_min']:.2f}–{row['test_error_max']:.2f})"

    seeds = len(report["rows"][0]["seeds"]) if report["rows"] else 1
    lines = [
        (f"{report['dataset']}: {report['train_size']:,} training / {report['test_size']:,} test images, "
         f"{report['iterations']} iterations in {report['wall_time_seconds']:.1f} s"
         + (f"; test error: mean ± std (min–max) over {seeds} seeds" if seeds > 1 else "")),
        (f"{'model':<12}{'test error':>{30 if seeds > 1 else 11}}{'paper':>8}{'params':>10}{'paper':>8}{'memory/batch':>14}{'paper':>7}"
         f"{'s/epoch':>9}{'NFE-F':>7}{'NFE-B':>7}"),
    ]
    for row in report["rows"]:
        paper = row["paper"]
        lines.append(
            f"{row['label']:<12}{error(row):>{30 if seeds > 1 else 11}}{paper['test_error_percent']:>6.2f} %"
            f"{row['params']:>10,}{paper['params']:>8}{row['activation_bytes'] / 1e6:>11.2f} MB{paper['memory']:>7}"
            f"{number(row['seconds_per_epoch'], '{:.2f}'):>9}{number(row['nfe_forward'], '{:.1f}'):>7}"
            f"{number(row['nfe_backward'], '{:.1f}'):>7}"
        )
    return "\n".join(lines)
