"""``odeviz train latent`` (a latent ODE and its RNN baseline on irregular spirals, headless) and
``odeviz table2`` (the paper's Table 2 measured: fresh models at 30, 50 and 100 observations)."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .common import (RunFailed, UsageError, add_knob_options, add_solver_options, experiment_from_args, finish,
                     finite_float, knob_values, param_error, param_values, run_training, writable_file)


def _add_run_options(parser, default_iters: int) -> None:
    from ..experiments import LatentODEExperiment

    parser.add_argument("--iters", type=int, default=default_iters, help=f"training iterations (default: {default_iters})")
    parser.add_argument("--max-seconds", type=finite_float, default=None, help="stop training after this many seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout instead of a summary")
    add_knob_options(parser, LatentODEExperiment)
    add_solver_options(parser, LatentODEExperiment)


def add_parsers(commands, experiments) -> None:
    train = experiments.add_parser(
        "latent", help="a latent ODE and an RNN on irregularly sampled spirals (the paper's Section 5)",
        description="Train a latent ODE and its RNN baseline side by side; report both models' RMSE on the test "
                    "series' held-out continuations, the ELBO, speed and NFE.",
    )
    _add_run_options(train, default_iters=500)
    train.add_argument("--data", type=Path, default=None, metavar="FILE",
                       help="your own series: a .csv of series,t,x1,… rows or an .npz of series, t, x (default: spirals)")
    train.add_argument("--save", type=Path, default=None, metavar="PATH", help="save the trained models here")
    train.set_defaults(run=_train_latent)
    table = commands.add_parser(
        "table2", help="the paper's Table 2: RNN vs latent ODE at 30, 50 and 100 observations",
        description="Train fresh latent ODEs and RNNs at 30, 50 and 100 observations per spiral and print their "
                    "test RMSE on the extrapolated part beside the paper's.",
    )
    _add_run_options(table, default_iters=1000)
    table.set_defaults(run=_table2)


def _check_run(args: argparse.Namespace) -> None:
    if args.iters < 1:
        raise UsageError(f"--iters must be at least 1, not {args.iters}")
    if args.max_seconds is not None and args.max_seconds <= 0:
        raise UsageError(f"--max-seconds must be positive, not {args.max_seconds:g}")


def _train_latent(args: argparse.Namespace) -> int:
    from ..data.spirals import read_series
    from ..experiments import LatentODEExperiment
    from ..numerics.device import configure_torch

    _check_run(args)
    if args.save is not None:
        writable_file("--save", args.save)
    extra = {}
    if args.data is not None:
        try:
            extra["dataset"] = read_series(args.data)
        except ValueError as error:
            raise UsageError(f"--data: {error}") from None
    configure_torch()
    experiment = experiment_from_args(LatentODEExperiment, args, **extra)
    try:
        experiment.trainer.snapshot_interval = math.inf  # nobody looks at pictures here
        report = run_training(experiment, args.iters, args.max_seconds)
        rmse_ode, rmse_rnn = experiment.test_rmse()
        if args.save is not None:
            try:
                experiment.save(args.save)
            except OSError as error:
                raise RunFailed(f"--save: cannot write {str(args.save)!r} ({error.strerror or error})") from None
    finally:
        experiment.close()
    values = param_values(experiment)
    values["dataset"] = experiment.test_data.name
    report = {
        "experiment": "latent", "data": experiment.test_data.name, **report,
        "rmse_latent_ode": rmse_ode, "rmse_rnn": rmse_rnn, "test_series": len(experiment.test_data),
        "saved": str(args.save) if args.save is not None else None, "params": values,
    }
    return finish(report, args.json, _summary)


def _summary(report: dict) -> str:
    p, nfe_f = report["params"], report["nfe_forward"]
    lines = [
        f"latent on {report['data']}: {report['iterations']} iterations in {report['wall_time_seconds']:.1f} s "
        f"({report['iterations_per_second']:.1f} it/s)",
        f"  latent dim {p['latent_dim']}, hidden {p['hidden']}, encoder {p['encoder_hidden']}, {p['method']} "
        f"rtol={p['rtol']:g} atol={p['atol']:g}, lr={p['learning_rate']:g}, seed {p['seed']}",
        f"  ELBO {report.get('final_elbo', math.nan):.2f} (log-likelihood {report.get('final_log_likelihood', math.nan):.2f}, "
        f"KL {report.get('final_kl', math.nan):.2f}) per series",
        f"  RMSE on the extrapolated part of {report['test_series']} test series: latent ODE {report['rmse_latent_ode']:.4f}, "
        f"RNN {report['rmse_rnn']:.4f}",
    ]
    if nfe_f["last"] is not None:
        lines.append(f"  NFE forward mean {nfe_f['mean']:.1f} / max {nfe_f['max']} / last {nfe_f['last']}")
    if report["saved"]:
        lines.append(f"  saved to {report['saved']}")
    return "\n".join(lines)


def _table2(args: argparse.Namespace) -> int:
    from ..experiments import LatentODEExperiment
    from ..experiments.latent_table2 import table2_rows
    from ..numerics.device import configure_torch

    _check_run(args)
    params = knob_values(LatentODEExperiment, args)
    if "observations" in params:
        raise UsageError("--obs: table2 trains at 30, 50 and 100 observations; for one, run odeviz train latent --obs N")
    configure_torch()
    rows = []
    try:
        for row in table2_rows(args.iters, args.max_seconds, **params):
            rows.append(row)
            print(f"odeviz: {row['observations']} observations: latent ODE {row['latent_ode']:.4f}, RNN {row['rnn']:.4f} "
                  f"({row['iterations']} iterations, {row['seconds']:.0f} s)", file=sys.stderr)
    except ValueError as error:
        raise UsageError(param_error(error, LatentODEExperiment)) from None
    report = {"experiment": "table2", "rows": rows, "params": params}
    stopped = [row["message"] for row in rows if row["message"]]
    if stopped:
        report.update(stopped_early=True, message=stopped[0])
    return finish(report, args.json, _table)


def _table(report: dict) -> str:
    lines = ["Table 2: RMSE on the extrapolated part (measured | paper)", "  observations   RNN               latent ODE"]
    for row in report["rows"]:
        lines.append(f"  {row['observations']:>12}   {row['rnn']:.4f} | {row['paper_rnn']:.4f}   "
                     f"{row['latent_ode']:.4f} | {row['paper_latent_ode']:.4f}")
    return "\n".join(lines)
