"""The ``odeviz`` command: serve the pages, or train an experiment headless.

Shared plumbing lives here; each experiment's commands live in a module of this package with an
``add_parsers(commands, train_experiments)`` function, listed in ``COMMANDS``.

    odeviz serve [--port 5006] [--show] [--address ADDR]
    odeviz train continuity --iters 300 [--json] [--target cubic] [--depth 8] [--rtol 1e-3] …
    odeviz train classifier --data moons --iters 300 [--json] [--augment 1] [--regularization 0.1] …
    odeviz train cnf --data moons|PATH.npy|PATH.csv [--iters N] [--max-seconds S] [--save PATH] [--json]
    odeviz fig3 [--iters 200] [--json] [--seminorm] …
    odeviz train supervised --model mlp|resnet|rknet|odenet [--epochs N] [--mnist-dir DIR] [--json]
    odeviz table1 [--epochs N] [--json]
    odeviz train latent --obs 30 [--iters N] [--max-seconds S] [--data FILE] [--save PATH] [--json]
    odeviz table2 [--iters N] [--json]

Bad values get one line on stderr naming the option and exit code 2; a training run that stops
itself (NaN loss, step-size underflow, too many evaluations) says why on stderr and exits 1.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from . import classifier, cnf, continuity, latent, serve, table1
from .common import EXIT_INTERRUPTED, EXIT_STOPPED, EXIT_USAGE, Parser, RunFailed, UsageError

# Each module adds its subcommands: ``odeviz <command>`` and ``odeviz train <experiment>``.
COMMANDS = (serve, continuity, classifier, cnf, table1, latent)


def build_parser(only: str | None = None) -> Parser:
    """Every command's parser; with ``only`` (a command's name) that command's alone: ``odeviz serve``
    need not import the experiments (and torch) that the training commands' options are read from."""
    parser = Parser(prog="odeviz", description="See and teach Neural ODEs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    train = commands.add_parser("train", help="train an experiment headless and print a summary")
    experiments = train.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT", parser_class=Parser)
    for command in COMMANDS:
        if only is None or command.__name__.rsplit(".", 1)[-1] == only:
            command.add_parsers(commands, experiments)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(only="serve" if argv[:1] == ["serve"] else None).parse_args(argv)
    try:
        return args.run(args)
    except UsageError as error:
        print(f"odeviz: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except RunFailed as error:
        print(f"odeviz: {error}", file=sys.stderr)
        return EXIT_STOPPED
    except KeyboardInterrupt:
        print("odeviz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
