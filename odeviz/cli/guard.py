"""What stands between the network and the pages of ``odeviz serve``.

- **Host names**: every request (page, static file, websocket) must name the server by one of the
  hosts it serves. Tornado skips the websocket Origin check when Origin equals Host, so without this
  a DNS-rebinding page (Host = Origin = evil.example) would get a session on a loopback server.
- **Sessions**: at most ``max_sessions`` at once; a page asked for beyond that gets a polite page.
- **Beyond loopback**: session ids are signed, so a made-up id gets no session.
- **Uploads**: Bokeh's websocket message limit fits the largest file a page takes, base64 included.
"""
from __future__ import annotations

import html
import ipaddress
import socket
from dataclasses import dataclass, field

from bokeh.server.util import check_allowlist, create_hosts_allowlist
from bokeh.settings import settings
from bokeh.util.token import generate_secret_key, get_session_id
from tornado.routing import Matcher, Rule
from tornado.web import RequestHandler

from ..data.files import MAX_FILE_BYTES

WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
# A file goes up as base64 text in one websocket message: 4/3 of its size, plus the message around it.
MAX_MESSAGE_BYTES = MAX_FILE_BYTES * 4 // 3 + 4 * 2**20
RETRY_SECONDS = 60


@dataclass
class Gate:
    """Where ``odeviz serve`` listens and whom it answers; ``server_options`` and ``install`` apply it."""

    address: str
    port: int
    max_sessions: int
    extra_hosts: list[str] = field(default_factory=list)  # --allow-websocket-origin, Bokeh's HOST[:PORT]
    secret_key: bytes | None = field(default=None, repr=False)  # set when sessions are signed

    def __post_init__(self) -> None:
        if self.signs_sessions and self.secret_key is None:
            # BOKEH_SECRET_KEY when the person serving set one (several servers, one key), else one for this run.
            self.secret_key = (settings.secret_key() or generate_secret_key()).encode()

    @property
    def is_loopback(self) -> bool:
        try:
            return self.address == "localhost" or ipaddress.ip_address(self.address).is_loopback
        except ValueError:  # a host name: it may resolve to anything
            return False

    @property
    def signs_sessions(self) -> bool:
        """Always beyond loopback; on loopback when BOKEH_SIGN_SESSIONS asks for it."""
        return not self.is_loopback or settings.sign_sessions()

    @property
    def hosts(self) -> list[str]:
        """The Host (and websocket Origin) names served, in Bokeh's allowlist syntax."""
        names = ["localhost", "127.0.0.1"]
        if self.address in WILDCARD_ADDRESSES:
            names.append(socket.gethostname())  # the machine's own name; LAN addresses need --allow-websocket-origin
        else:
            names.append(self.address)
        # Bokeh's syntax, as for its websocket Origin check: a name without a port means port 80.
        extra = create_hosts_allowlist([host.lower() for host in self.extra_hosts], self.port) if self.extra_hosts else []
        return list(dict.fromkeys([f"{name.lower()}:{self.port}" for name in names] + extra))

    def server_options(self) -> dict:
        """Keyword arguments for ``pn.serve`` / Bokeh's ``Server``."""
        options = dict(
            address=self.address,
            websocket_origin=self.hosts,
            websocket_max_message_size=MAX_MESSAGE_BYTES,
            # Tornado's read buffer must hold the whole message too (its default is 100 MB).
            http_server_kwargs={"max_buffer_size": MAX_MESSAGE_BYTES},
        )
        if self.signs_sessions:
            options.update(sign_sessions=True, secret_key=self.secret_key)
        return options

    def install(self, tornado_app) -> None:
        """Put the Host check and the session cap in front of every route of Bokeh's Tornado app."""
        tornado_app.default_router.rules[:0] = [
            Rule(ForeignHost(self.hosts), RefusalPage, dict(status=403, text=FOREIGN_HOST_TEXT)),
            Rule(ClassFull(tornado_app, self.max_sessions), ClassFullPage, dict(max_sessions=self.max_sessions)),
        ]


FOREIGN_HOST_TEXT = (
    "This odeviz server does not answer to that host name. Open it by the address it printed "
    "when it started, or start it with --allow-websocket-origin HOST:PORT."
)


class ForeignHost(Matcher):
    """Matches a request whose Host header is not one of the served names (or is missing)."""

    def __init__(self, hosts: list[str]) -> None:
        self.hosts = hosts

    def match(self, request):
        host = request.headers.get("Host", "").strip().lower()
        return None if host and check_allowlist(host, self.hosts) else {}


def open_sessions(tornado_app) -> int:
    """Sessions alive or being built, over every page (Bokeh keeps the ones being built apart)."""
    return sum(len(context.sessions) + len(context._pending_sessions) for context in tornado_app.applications.values())


class ClassFull(Matcher):
    """Matches a request that would open a new session while ``max_sessions`` are open: a page, or a
    websocket naming a session that is not alive (Bokeh would create it)."""

    def __init__(self, tornado_app, max_sessions: int) -> None:
        self.tornado_app, self.max_sessions = tornado_app, max_sessions

    def match(self, request):
        if open_sessions(self.tornado_app) < self.max_sessions:
            return None
        path = request.path.removeprefix(self.tornado_app.prefix).rstrip("/") or "/"
        pages = self.tornado_app.applications
        if path in pages:
            return {}
        page, _, last = path.rpartition("/")
        if last == "ws" and page in pages and not self._alive(pages[page], request):
            return {}
        return None

    @staticmethod
    def _alive(context, request) -> bool:
        protocols = [part.strip() for part in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        try:
            session_id = get_session_id(protocols[1])
        except Exception:  # no or a malformed token: Bokeh refuses it itself
            return True
        return any(session.id == session_id for session in context.sessions)


class RefusalPage(RequestHandler):
    """A short HTML page with a status code, for every method (a websocket upgrade is a GET)."""

    def initialize(self, status: int, text: str) -> None:
        self.status, self.text = status, text

    def prepare(self) -> None:
        self.set_status(self.status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(REFUSAL_HTML.format(text=html.escape(self.text)))

    def check_xsrf_cookie(self) -> None:  # prepare() answers before any body is read
        pass


class ClassFullPage(RefusalPage):
    def initialize(self, max_sessions: int) -> None:
        super().initialize(503, f"The class is full: {max_sessions} sessions are open; try again in a minute.")

    def prepare(self) -> None:
        self.set_header("Retry-After", str(RETRY_SECONDS))
        super().prepare()


REFUSAL_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>odeviz</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.5">
<h1>odeviz</h1><p>{text}</p></body></html>
"""
