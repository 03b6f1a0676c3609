"""``odeviz serve``: every page of ``odeviz.views.PAGES`` behind an offline index."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from .common import EXIT_OK, UsageError


def _page_factory(page_class) -> Callable:
    def page():  # a plain function, so Panel calls it once per browser session: a fresh page each
        from ..runtime import configure_session

        configure_session()
        return page_class()

    page.__name__ = page_class.__name__
    return page


def _serve(args: argparse.Namespace) -> int:
    import panel as pn

    from ..views import PAGES

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
        index=str(Path(__file__).parent.parent / "views" / "index.html"),  # offline-friendly: no CDN logo
        # A closed tab's session, and so its training thread, ends within ~5 s (Bokeh's default: ~30 s).
        check_unused_sessions_milliseconds=1000,
        unused_session_lifetime_milliseconds=4000,
    )
    return EXIT_OK


def add_parsers(commands, train_experiments) -> None:
    serve = commands.add_parser("serve", help="serve every odeviz page (index at /)")
    serve.add_argument("--port", type=int, default=5006, help="port to listen on (default: 5006)")
    serve.add_argument("--address", default=None, help="address to listen on (default: all interfaces)")
    serve.add_argument("--show", action="store_true", help="open the index in a browser")
    serve.add_argument("--allow-websocket-origin", action="append", metavar="HOST[:PORT]",
                       help="another host the pages may be opened from (repeatable)")
    serve.set_defaults(run=_serve)
