"""What every ``odeviz`` command shares: one-line usage errors, number parsing, a training run with
a progress bar on stderr, and the NFE summary of a run."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_STOPPED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
POLL_SECONDS = 0.05  # how often the progress bar reads the trainer's history


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (``odeviz: error: …``) instead of usage + message."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")

    def add_argument(self, *args, **kwargs):
        # Helps quote params' docs, which may say "5%": argparse would take it for a format directive.
        if kwargs.get("help") and "%(" not in kwargs["help"]:
            kwargs["help"] = kwargs["help"].replace("%", "%%")
        return super().add_argument(*args, **kwargs)


def finite_float(text: str) -> float:
    """argparse type: a float that is neither NaN nor infinite (bounds are the experiment's job)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


class UsageError(Exception):
    """A bad value from the command line, reported as one line and exit code 2."""


class RunFailed(Exception):
    """A run that could not finish what was asked (e.g. saving its result), reported as one line and exit code 1."""


def json_text(report) -> str:
    """``report`` as strict JSON: NaN and infinities (nothing measured) become null."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(report), allow_nan=False)


def writable_file(option: str, path: Path) -> Path:
    """``path`` if a file can be written there (checked before a long run, not after), else UsageError."""
    if str(path) in ("", "."):
        raise UsageError(f"{option} needs a file name")
    if path.is_dir():
        raise UsageError(f"{option}: {str(path)!r} is a folder; give a file name in it")
    if not path.parent.is_dir():
        raise UsageError(f"{option}: the folder {str(path.parent)!r} does not exist")
    existed = path.exists()
    try:
        with open(path, "ab"):  # what saving will do; os.access says yes to root even where writing fails
            pass
    except OSError as error:
        raise UsageError(f"{option}: cannot write to {str(path)!r} ({error.strerror or error})") from None
    if not existed:
        os.unlink(path)
    return path


def run_training(experiment, iterations: int, max_seconds: float | None = None) -> dict:
    """Run ``iterations`` steps on the experiment's trainer with a progress bar on stderr, stopping
    early (not an error) once ``max_seconds`` have passed."""
    from tqdm import tqdm

    trainer = experiment.trainer
    trainer.wait_idle()  # the first picture, drawn at construction, is not training time
    start = time.perf_counter()
    experiment.step(iterations)
    with tqdm(total=iterations, desc="training", unit="it", file=sys.stderr, dynamic_ncols=True) as bar:
        done, stopped = False, None
        while not done:
            done = trainer.wait_idle(timeout=POLL_SECONDS)
            if not done and max_seconds is not None and time.perf_counter() - start > max_seconds:
                experiment.pause()  # the iteration in flight is discarded
                stopped = time.perf_counter()  # what follows is a last picture, if any: not training
                done = trainer.wait_idle()
            count = len(trainer.history)
            if count > bar.n:
                last = trainer.history.last() or {}
                bar.set_postfix(loss=f"{last.get(experiment.model_loss, math.nan):.3g}", nfe=int(last.get("nfe_forward", 0)), refresh=False)
                bar.update(count - bar.n)
    wall = (stopped or time.perf_counter()) - start
    _, columns = trainer.history.since(0)
    count = len(trainer.history)
    last = trainer.history.last() or {}
    report = {
        "iterations": count,
        **{f"final_{name}": value for name, value in last.items() if name not in ("iteration", "nfe_forward", "nfe_backward", "seconds")},
        "iterations_per_second": count / wall if wall > 0 else 0.0,
        "wall_time_seconds": wall,
        "nfe_forward": nfe_stats(columns.get("nfe_forward")),
        "nfe_backward": nfe_stats(columns.get("nfe_backward")),
    }
    if trainer.message:
        report.update(stopped_early=True, message=trainer.message)
    return report


def finish(report: dict, as_json: bool, summary) -> int:
    """Print the report (one JSON object, or ``summary(report)``); a run that stopped itself says why
    on stderr and exits 1."""
    exported = "".join(f"\n  exported {path}" for path in report.get("exported") or ())
    print(json_text(report) if as_json else summary(report) + exported)
    if report.get("stopped_early"):
        print(f"odeviz: {report['message']}", file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_OK


def nfe_stats(values) -> dict:
    if values is None or len(values) == 0:
        return {"mean": None, "max": None, "last": None}
    return {"mean": float(values.mean()), "max": int(values.max()), "last": int(values[-1])}


def param_values(experiment) -> dict:
    return {name: value for name, value in experiment.param.values().items() if name != "name"}


# ---- options from an experiment's knobs (odeviz.experiments.knobs: the one table) ---------------
def _add_knob(parser: argparse.ArgumentParser, experiment_class, knob, overrides: dict) -> None:
    import param

    p = experiment_class.param[knob.param]
    option = "--" + knob.public.replace("_", "-")
    kwargs: dict = {"dest": knob.param, "default": None, "metavar": knob.public.upper()}
    if isinstance(p, param.Boolean):
        kwargs.pop("metavar")
        kwargs.update(action=argparse.BooleanOptionalAction, help=f"{p.doc} (default: {'on' if p.default else 'off'})")
    elif isinstance(p, param.Selector):
        choices = ", ".join(map(str, p.objects))
        kwargs.update(choices=p.objects, help=f"{p.doc}: {choices} (default: {p.default})")
    else:
        kind = int if isinstance(p, param.Integer) else finite_float if isinstance(p, param.Number) else str
        default = f"{p.default:g}" if isinstance(p.default, float) else p.default
        # A param that is None by default says in its doc what that means ("the forward rtol").
        kwargs.update(type=kind, help=p.doc if p.default is None else f"{p.doc} (default: {default})")
    kwargs.update(overrides.get(knob.param, {}))
    parser.add_argument(option, **kwargs)


def add_knob_options(parser: argparse.ArgumentParser, experiment_class, **overrides: dict) -> None:
    """An option for each knob particular to the experiment: ``--kebab-name``, its doc as help, its
    default, choices for a Selector, ``--flag/--no-flag`` for a Boolean. ``overrides`` maps a param
    to argparse arguments that differ (e.g. a ``metavar``). Bounds are the param's: see
    :func:`experiment_from_args`."""
    from ..experiments.knobs import own_knobs

    for knob in own_knobs(experiment_class):
        _add_knob(parser, experiment_class, knob, overrides)


def add_solver_options(parser: argparse.ArgumentParser, experiment_class, **overrides: dict) -> None:
    """--lr, --seed and the solver's --method, --fixed-steps, --rtol, --atol, --adjoint (and
    --seminorm where the experiment has it), documented by the experiment's params."""
    from ..experiments.knobs import solver_knobs

    for knob in solver_knobs(experiment_class):
        _add_knob(parser, experiment_class, knob, overrides)


def knob_values(experiment_class, args: argparse.Namespace) -> dict:
    """The experiment's params given on the command line (options left out keep the defaults)."""
    from ..experiments.knobs import knobs

    return {knob.param: getattr(args, knob.param) for knob in knobs(experiment_class)
            if getattr(args, knob.param, None) is not None}


def add_file_options(parser: argparse.ArgumentParser) -> None:
    """--save and --load: a run on disk, the same file a page saves and opens."""
    parser.add_argument("--save", type=Path, default=None, metavar="PATH",
                        help="save the trained run here (settings, weights, history): open it in the page, or go on with --load")
    parser.add_argument("--load", type=Path, default=None, metavar="PATH",
                        help="go on from a run saved by --save or by a page (the options given here change its settings)")


def experiment_from_args(experiment_class, args: argparse.Namespace, **params):
    """The experiment with the knobs given on the command line (and ``params``), going on from the
    run of ``--load`` if given; a value its params refuse is a :class:`UsageError` naming the option,
    in the param's own words, and so is a file that does not fit."""
    from ..experiments.knobs import knobs
    from ..experiments.saved import SavedStateError, check_state, read_state

    given = knob_values(experiment_class, args)
    load = getattr(args, "load", None)
    if getattr(args, "save", None) is not None:
        writable_file("--save", args.save)
    state = None
    try:
        if load is not None:
            state = read_state(load)
            check_state(state, experiment_class, what=repr(str(load)))
        return experiment_class(**given, **params, **({"state": state} if state else {}))
    except SavedStateError as error:
        changed = [f"--{public.replace('_', '-')} {given[name]} (saved: {state['settings'][name]})"
                   for name, public in ((k.param, k.public) for k in knobs(experiment_class))
                   if state and name in given and given[name] != state["settings"].get(name)]
        raise UsageError(f"--load: {error}" + (f"; given here: {', '.join(changed)}" if changed else "")) from None
    except ValueError as error:  # out of bounds, or e.g. an MNIST directory that cannot be read
        raise UsageError(param_error(error, experiment_class)) from None


def save_run(experiment, args: argparse.Namespace) -> None:
    """Write the run to ``--save`` if given (RunFailed if the disk says no)."""
    if getattr(args, "save", None) is None:
        return
    try:
        experiment.save(args.save)
    except (OSError, RuntimeError) as error:  # e.g. the disk filled up during training
        raise RunFailed(f"trained, but could not save the model to {str(args.save)!r}: {error}") from None


def param_error(error: ValueError, experiment_class) -> str:
    """param's "Number parameter 'Experiment.rtol' must be …" as "--rtol must be …"."""
    from ..experiments.knobs import knobs, refusal

    name, rest = refusal(error)
    if name is None:
        return rest
    public = {knob.param: knob.public for knob in knobs(experiment_class)}.get(name)
    return f"--{public.replace('_', '-')} {rest}" if public else f"{name} {rest}"


# ---- --export DIR: the page's files, written from the trained experiment ----------------------
def add_export_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--export", type=Path, default=None, metavar="DIR",
                        help="after training, write the page's figures as a standalone HTML file (works offline) "
                             "into DIR, with the flow as a GIF and the table as CSV where the page has them")


def export_folder(folder: Path | None) -> Path | None:
    """``--export``'s folder, made now (before a long run, not after); UsageError if it cannot be."""
    if folder is None:
        return None
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--export: {str(folder)!r} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--export: cannot make the folder {str(folder)!r} ({error.strerror or error})") from None
    return folder


def export_page(experiment, slug: str, folder: Path | None) -> list[str]:
    """Draw the trained ``experiment`` on its page (headless) and write the page's exports into
    ``folder``; the paths written (none without a folder)."""
    if folder is None:
        return []
    from ..views import PAGES
    from ..views.export import write_exports

    experiment.trainer.refresh()  # the final picture, drawn now
    page = PAGES[slug](experiment=experiment).ready()
    try:
        return [str(path) for path in write_exports(page, folder)]
    except OSError as error:
        raise RunFailed(f"trained, but could not write the exports to {str(folder)!r}: {error.strerror or error}") from None
