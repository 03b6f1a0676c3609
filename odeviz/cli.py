"""The ``odeviz`` command: serve the pages, or train an experiment headless.

    odeviz serve [--port 5006] [--show] [--address ADDR]
    odeviz train continuity --iters 300 [--json] [--target cubic] [--depth 8] [--rtol 1e-3] …

Bad values get one line on stderr naming the option and exit code 2; a training run that stops
itself (NaN loss, step-size underflow, too many evaluations) says why on stderr and exits 1.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

EXIT_OK, EXIT_STOPPED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
POLL_SECONDS = 0.05  # how often the progress bar reads the trainer's history


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (``odeviz: error: …``) instead of usage + message."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


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


# ---- odeviz train ---------------------------------------------------------------------------
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


def _add_continuity_parser(experiments) -> None:
    from .experiments import ContinuityExperiment

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
    parser.add_argument("--method", choices=params.method.objects, default=None, metavar="METHOD",
                        help=f"{params.method.doc}: {', '.join(params.method.objects)} (default: {params.method.default})")
    parser.add_argument("--rtol", type=finite_float, default=None, help=f"{params.rtol.doc} (default: {params.rtol.default:g})")
    parser.add_argument("--atol", type=finite_float, default=None, help=f"{params.atol.doc} (default: {params.atol.default:g})")
    parser.add_argument("--lr", type=finite_float, default=None,
                        help=f"{params.learning_rate.doc} (default: {params.learning_rate.default:g})")
    parser.add_argument("--seed", type=int, default=None, help=f"{params.seed.doc} (default: {params.seed.default})")
    parser.add_argument("--adjoint", action=argparse.BooleanOptionalAction, default=None,
                        help=f"{params.adjoint.doc} (default: {'on' if params.adjoint.default else 'off'})")
    parser.set_defaults(run=_train_continuity)


def _param_error(error: ValueError) -> str:
    """param's "Number parameter 'Experiment.rtol' must be …" as "--rtol must be …"."""
    text = str(error)
    match = re.search(r"parameter '(?:\w+\.)?(\w+)' (.*)", text, flags=re.S)
    if not match:
        return text
    name, rest = match.groups()
    option = OPTION_OF_PARAM.get(name)
    return f"{'--' + option if option else name} {rest.rstrip('.')}"


def _train_continuity(args: argparse.Namespace) -> int:
    from .nets import configure_torch
    from .experiments import ContinuityExperiment

    if args.iters < 1:
        raise UsageError(f"--iters must be at least 1, not {args.iters}")
    configure_torch()
    params = {param: getattr(args, option) for option, param in CONTINUITY_OPTIONS.items() if getattr(args, option) is not None}
    try:
        experiment = ContinuityExperiment(**params)
    except ValueError as error:
        raise UsageError(_param_error(error)) from None
    try:
        # Nobody looks at intermediate pictures here: draw only the final one.
        experiment.trainer.snapshot_interval = math.inf
        report = _run(experiment, args.iters)
    finally:
        experiment.close()
    report = {"experiment": "continuity", **report, "params": _param_values(experiment)}
    if args.json:
        print(json.dumps(report))
    else:
        print(_summary(report))
    if report.get("stopped_early"):
        print(f"odeviz: {report['message']}", file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_OK


def _run(experiment, iterations: int) -> dict:
    """Run ``iterations`` steps on the experiment's trainer with a progress bar on stderr."""
    from tqdm import tqdm

    trainer = experiment.trainer
    trainer.wait_idle()  # the first picture, drawn at construction, is not training time
    start = time.perf_counter()
    experiment.step(iterations)
    with tqdm(total=iterations, desc="training", unit="it", file=sys.stderr, dynamic_ncols=True) as bar:
        done = False
        while not done:
            done = trainer.wait_idle(timeout=POLL_SECONDS)
            count = len(trainer.history)
            if count > bar.n:
                last = trainer.history.last() or {}
                bar.set_postfix(loss=f"{last.get('loss', math.nan):.3g}", nfe=int(last.get("nfe_forward", 0)), refresh=False)
                bar.update(count - bar.n)
    wall = time.perf_counter() - start
    _, columns = trainer.history.since(0)
    count = len(trainer.history)
    last = trainer.history.last() or {}
    report = {
        "iterations": count,
        "final_loss": last.get("loss", math.nan),
        "final_loss_ode": last.get("loss_ode", math.nan),
        "final_loss_resnet": last.get("loss_resnet", math.nan),
        "iterations_per_second": count / wall if wall > 0 else 0.0,
        "wall_time_seconds": wall,
        "nfe_forward": _stats(columns.get("nfe_forward")),
        "nfe_backward": _stats(columns.get("nfe_backward")),
    }
    if trainer.message:
        report.update(stopped_early=True, message=trainer.message)
    return report


def _stats(values) -> dict:
    if values is None or len(values) == 0:
        return {"mean": None, "max": None, "last": None}
    return {"mean": float(values.mean()), "max": int(values.max()), "last": int(values[-1])}


def _param_values(experiment) -> dict:
    return {name: value for name, value in experiment.param.values().items() if name != "name"}


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


# ---- odeviz serve ---------------------------------------------------------------------------
def _page_factory(page_class) -> Callable:
    def page():  # a plain function, so Panel calls it once per browser session: a fresh page each
        from .app import configure_session

        configure_session()
        return page_class()

    page.__name__ = page_class.__name__
    return page


def _serve(args: argparse.Namespace) -> int:
    import panel as pn

    from .views import PAGES

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, not {args.port}")
    origins = [f"localhost:{args.port}", f"127.0.0.1:{args.port}"]
    if args.address and args.address not in ("localhost", "127.0.0.1"):
        origins.append(f"{args.address}:{args.port}")
    origins += args.allow_websocket_origin or []
    pages = {slug: _page_factory(page_class) for slug, page_class in PAGES.items()}
    titles = {slug: f"odeviz · {page_class.title}" for slug, page_class in PAGES.items()}
    pn.config.index_titles = {f"/{slug}": page_class.title for slug, page_class in PAGES.items()}
    pn.serve(
        pages,
        port=args.port,
        address=args.address,
        websocket_origin=origins,
        show=args.show,
        title=titles,
        start=True,
        verbose=True,
        redirect_root=False,  # "/" lists the pages even while there is only one
        index=str(Path(__file__).parent / "views" / "index.html"),  # offline-friendly: no CDN logo
        # A closed tab's session, and so its training thread, ends within ~5 s (Bokeh's default: ~30 s).
        check_unused_sessions_milliseconds=1000,
        unused_session_lifetime_milliseconds=4000,
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="odeviz", description="See and teach Neural ODEs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    serve = commands.add_parser("serve", help="serve every odeviz page (index at /)")
    serve.add_argument("--port", type=int, default=5006, help="port to listen on (default: 5006)")
    serve.add_argument("--address", default=None, help="address to listen on (default: all interfaces)")
    serve.add_argument("--show", action="store_true", help="open the index in a browser")
    serve.add_argument("--allow-websocket-origin", action="append", metavar="HOST[:PORT]",
                       help="another host the pages may be opened from (repeatable)")
    serve.set_defaults(run=_serve)

    train = commands.add_parser("train", help="train an experiment headless and print a summary")
    experiments = train.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT", parser_class=_Parser)
    _add_continuity_parser(experiments)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as error:
        print(f"odeviz: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("odeviz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
