"""``odeviz serve``: every page of ``odeviz.views.PAGES`` behind an offline index.

Loopback only unless ``--address`` says otherwise; what the server accepts is in ``guard``.
"""
from __future__ import annotations

import argparse
import errno
import functools
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from ..runtime import DATA_ROOT_VARIABLE, import_torch_compiler_soon, share_heap_between_threads
from .common import EXIT_OK, UsageError

# Experiments training at once on each Dask worker. A local worker has one thread and one core: two
# trainers in it only trade the GIL (20 sessions on 2 workers, alternated: 28.6 and 29.7 it/s in all
# with one slot, 28.0 and 24.6 with two; rtol → picture p95 144–149 against 190–192 ms). A worker with
# more cores (a cluster given by --scheduler) takes more: --training-slots.
DEFAULT_SLOTS_PER_WORKER = 1

DEFAULT_MAX_SESSIONS = 60  # a class, each with a tab or two; every session trains on the same cores

# A closed tab's session, and so its training thread, ends within ~5 s (Bokeh's default: ~30 s) ...
UNUSED_SESSION_CHECK_MS = 1000
UNUSED_SESSION_LIFETIME_MS = 4000
TRIM_DELAY_SECONDS = 1.0  # ... and its memory goes back to the system a second later
# How long after a tab closes its memory is back, at the latest.
SESSION_END_SECONDS = (UNUSED_SESSION_CHECK_MS + UNUSED_SESSION_LIFETIME_MS) / 1000 + TRIM_DELAY_SECONDS


def _session_page(name: str, build: Callable[[], object]) -> Callable:
    """What Panel calls once per browser session (a plain function: a fresh page each): the session's
    set-up, then ``build()``."""
    def page():
        import panel as pn

        from ..runtime import configure_session

        configure_session()
        pn.state.on_session_destroyed(_return_memory_soon)
        return build()

    page.__name__ = name
    return page


def _catalog_page(slug: str) -> Callable:
    from ..views.catalog import page_class  # the class (and torch) only when a session first opens it

    return _session_page(slug, lambda: page_class(slug)())


def _lesson_page(path: Path) -> Callable:
    def build():
        from ..views.lesson import LessonPage

        return LessonPage(_lesson(path))

    return _session_page("lesson", build)


@functools.cache
def _lesson(path: Path):
    from ..views.lesson_file import read_lesson

    return read_lesson(path)


_trim_pending = False


def _return_memory_soon(_context) -> None:
    """Once a closed session's models are freed, give their heap back to the system (glibc keeps freed
    blocks of training threads' arenas; over a class the server's RSS would otherwise only grow).
    Coalesced: one trim a second at most, however many tabs close at once."""
    global _trim_pending
    if _trim_pending:
        return
    import asyncio

    from ..runtime import return_freed_memory

    def trim() -> None:
        global _trim_pending
        _trim_pending = False
        return_freed_memory()

    _trim_pending = True
    asyncio.get_event_loop().call_later(TRIM_DELAY_SECONDS, trim)


def _warm_up(lesson_path: Path) -> None:
    """Import, while the index is read, what the first page would wait for: the pages with their
    experiments and torch (the server listened before importing them), the lesson, Panel's Markdown
    renderer (imported by the first Markdown pane shown: ~0.3 s) and torch's compiler (see
    ``runtime.import_torch_compiler_soon``)."""
    import panel as pn

    from ..views import PAGES  # noqa: F401

    pn.pane.Markdown("*odeviz*").get_root()
    _lesson(lesson_path)
    import_torch_compiler_soon()


def _listen_error(error: OSError, address: str, port: int) -> str:
    if error.errno == errno.EADDRINUSE:
        return f"port {port} is in use (another odeviz serve? choose a free one with --port)"
    if error.errno == errno.EACCES:
        return f"no permission to listen on port {port} (ports below 1024 need root; choose another with --port)"
    return f"cannot listen on {address}:{port} ({error.strerror or error})"


CLOSED_TAB_WARNING = "Failed sending message as connection was closed"  # Bokeh's and Panel's words


def quiet_closed_tabs(loop) -> None:
    """No log lines for the frames still on their way to a tab that was just closed.

    Bokeh and Panel warn once per frame; and Panel cancels a closed session's pending writes, but
    one that already failed is done, so its WebSocketClosedError is never retrieved and asyncio
    prints its traceback when the task is collected (about one tab close in three). Every other
    warning and unhandled error is still reported.
    """
    import logging

    from tornado.websocket import WebSocketClosedError

    for name in ("bokeh.server.views.ws", "panel.io.document"):
        logging.getLogger(name).addFilter(lambda record: record.getMessage() != CLOSED_TAB_WARNING)

    def handle(loop, context) -> None:
        if not isinstance(context.get("exception"), WebSocketClosedError):
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


def _offer_data_root(data_root: str | None) -> None:
    """Pages read server-side paths only inside this folder (see ``runtime.resolve_in_root``)."""
    if not data_root:
        os.environ.pop(DATA_ROOT_VARIABLE, None)
        return
    root = Path(data_root)
    if not root.is_dir():
        raise UsageError(f"--data-root {data_root} is not a folder")
    os.environ[DATA_ROOT_VARIABLE] = str(root.resolve())


def _serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, not {args.port}")
    if args.max_sessions < 1:
        raise UsageError(f"--max-sessions must be at least 1, not {args.max_sessions}")
    _check_placement(args)
    _offer_data_root(args.data_root)
    share_heap_between_threads()  # before any session's thread

    import panel as pn

    from ..views.catalog import CATALOG
    from ..views.lesson_file import DEFAULT_LESSON, LessonError, lesson_title
    from .guard import Gate

    lesson_path = Path(args.lesson).resolve() if args.lesson else DEFAULT_LESSON
    try:  # a lesson of the user's is read whole before listening, to refuse it at once; odeviz's own later
        title = _lesson(lesson_path).title if args.lesson else lesson_title(lesson_path)
    except LessonError as error:
        raise UsageError(f"--lesson: {error}") from None

    gate = Gate(args.address, args.port, args.max_sessions, args.allow_websocket_origin)
    if not gate.is_loopback:
        print(f"odeviz: warning: serving beyond this machine on {args.address or 'every interface'}: anyone who can "
              f"reach port {args.port} may open a session and train on this machine's CPU "
              f"(host names answered: {', '.join(gate.hosts)}; sessions signed)", file=sys.stderr)
    # The lesson first: where a class starts. The pages are imported when the first is opened (or
    # by the warm-up below): the index answers before torch is loaded.
    pages = {"lesson": _lesson_page(lesson_path), **{slug: _catalog_page(slug) for slug in CATALOG}}
    titles = {"lesson": f"odeviz · {title}", **{slug: f"odeviz · {page.title}" for slug, page in CATALOG.items()}}
    pn.config.index_titles = {"/lesson": f"Guided lesson: {title}",
                              **{f"/{slug}": page.title for slug, page in CATALOG.items()}}
    try:
        server = pn.serve(
            pages,
            port=args.port,
            show=args.show,
            title=titles,
            start=False,
            verbose=True,
            redirect_root=False,  # "/" lists the pages even while there is only one
            index=str(Path(__file__).parent.parent / "views" / "index.html"),  # offline-friendly: no CDN logo
            check_unused_sessions_milliseconds=UNUSED_SESSION_CHECK_MS,
            unused_session_lifetime_milliseconds=UNUSED_SESSION_LIFETIME_MS,
            num_procs=args.num_procs,
            **gate.server_options(),
        )
    except OSError as error:  # binding the port
        raise UsageError(_listen_error(error, args.address, args.port)) from None
    gate.install(server._tornado)
    _place_experiments(args)  # after the fork of --num-procs: a Dask client does not survive a fork
    quiet_closed_tabs(server.io_loop.asyncio_loop)
    server.start()
    threading.Thread(target=_warm_up, args=(lesson_path,), name="odeviz-warm-up", daemon=True).start()
    server.io_loop.start()  # until Ctrl-C (Panel's SIGINT handler stops the loop)
    return EXIT_OK


def _check_placement(args: argparse.Namespace) -> None:
    if args.num_procs < 1:
        raise UsageError(f"--num-procs must be at least 1, not {args.num_procs}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    if args.training_slots < 1:
        raise UsageError(f"--training-slots must be at least 1, not {args.training_slots}")
    if args.workers and args.scheduler:
        raise UsageError("give --workers (start Dask workers here) or --scheduler (use a running cluster), not both")
    if args.workers and args.num_procs > 1:
        raise UsageError("several server processes (--num-procs) share one cluster: start it with `dask scheduler` "
                         "and `dask worker`, and give its address with --scheduler instead of --workers")
    if args.scheduler and not args.scheduler.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://")):
        raise UsageError(f"--scheduler needs a Dask scheduler address such as tcp://HOST:8786, not {args.scheduler!r}")


def _place_experiments(args: argparse.Namespace) -> None:
    if not (args.workers or args.scheduler):
        return
    from ..experiments import placement

    try:
        client = placement.use_workers(args.workers, args.scheduler, slots_per_worker=args.training_slots)
    except OSError as error:
        raise UsageError(f"cannot reach the Dask scheduler at {args.scheduler} ({error})") from None
    workers = len(client.scheduler_info()["workers"])
    print(f"odeviz: experiments train in {workers} Dask worker(s) at {client.scheduler.address}, "
          f"at most {args.training_slots} at once on each", file=sys.stderr)


def add_parsers(commands, train_experiments) -> None:
    serve = commands.add_parser("serve", help="serve every odeviz page (index at /)")
    serve.add_argument("--port", type=int, default=5006, help="port to listen on (default: 5006)")
    serve.add_argument("--address", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only); for a class on a LAN "
                            "give this machine's LAN address, or 0.0.0.0 for every interface")
    serve.add_argument("--show", action="store_true", help="open the index in a browser")
    serve.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                       help="another host name the pages may be opened by (repeatable; no port means 80)")
    serve.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS,
                       help=f"most browser tabs served at once; more get a 'class is full' page (default: {DEFAULT_MAX_SESSIONS})")
    serve.add_argument("--data-root", default=os.environ.get(DATA_ROOT_VARIABLE) or None, metavar="DIR",
                       help="the folder whose data (such as MNIST) pages may open by a path typed in the page "
                            f"(default: ${DATA_ROOT_VARIABLE}, else none: pages take no server-side paths)")
    serve.add_argument("--workers", type=int, default=None, metavar="N",
                       help="train the pages' experiments in N Dask worker processes on this machine (default: "
                            "threads in the server process); for a class")
    serve.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="train the pages' experiments on the running Dask cluster at this address (more machines)")
    serve.add_argument("--training-slots", type=int, default=DEFAULT_SLOTS_PER_WORKER, metavar="K",
                       help="experiments training at once on each worker; others wait their turn, shown in their "
                            f"status line (default: {DEFAULT_SLOTS_PER_WORKER})")
    serve.add_argument("--num-procs", type=int, default=1, metavar="P",
                       help="server processes sharing the port (Bokeh forks them; Linux/macOS only; with --scheduler, "
                            "not --workers; a page can follow only a session of its own process)")
    serve.add_argument("--lesson", default=None, metavar="FILE",
                       help="the lesson at /lesson: a Markdown file with a YAML front matter (see the README's "
                            "'Write your own lesson'; default: odeviz's own walk through the paper)")
    serve.set_defaults(run=_serve)
