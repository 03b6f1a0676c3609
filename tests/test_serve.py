"""``odeviz serve`` facing a network: loopback by default, Host names checked (no DNS rebinding),
signed sessions, a session cap, websocket messages big enough for the stated upload limit, and a
port in use as one line. Raw HTTP and websocket requests against a real served process."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import http.client
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from harness import REPO, free_port, running
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from odeviz.cli.guard import MAX_MESSAGE_BYTES, Gate
from odeviz.data.files import MAX_FILE_BYTES

MAX_SESSIONS = 2
PAGE = "/continuity"


@contextlib.contextmanager
def serving(max_sessions: int):
    """A signed loopback ``odeviz serve``; yields its port."""
    port = free_port()
    command = [sys.executable, "-m", "odeviz", "serve", "--port", str(port), "--max-sessions", str(max_sessions)]
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:  # the server's environment, not the tests'
            patch.setenv("BOKEH_SIGN_SESSIONS", "yes")  # what every non-loopback address gets
            patch.setenv("BOKEH_SECRET_KEY", "")  # none given: the server makes one of its own
            stack.enter_context(running(command, f"http://127.0.0.1:{port}/", timeout=120))
        yield port


@pytest.fixture(scope="module")
def server():
    with serving(max_sessions=60) as port:  # the default: every page GET below opens a session
        yield port


def get(port: int, path: str, host: str | None = None, headers: dict | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path, headers={"Host": f"127.0.0.1:{port}" if host is None else host, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def page_token(port: int) -> str:
    status, page = get(port, PAGE)
    assert status == 200, page[:500]
    return re.search(r'"token":"([^"]+)"', page).group(1)


def upgrade_headers(host: str, origin: str) -> dict:
    return {"Origin": origin, "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Protocol": "bokeh, x"}


async def open_socket(port: int, token: str):
    """A websocket to the page's session, as a browser opens it; returns it after Bokeh's ACK."""
    request = HTTPRequest(f"ws://127.0.0.1:{port}{PAGE}/ws", headers={"Origin": f"http://127.0.0.1:{port}"})
    socket_ = await websocket_connect(request, subprotocols=["bokeh", token], max_message_size=MAX_MESSAGE_BYTES)
    header = json.loads(await socket_.read_message())
    await socket_.read_message(), await socket_.read_message()  # metadata, content
    assert header["msgtype"] == "ACK"
    return socket_


# ---- Host names ---------------------------------------------------------------------------
def test_loopback_host_names_are_served(server):
    assert get(server, "/")[0] == 200
    assert get(server, "/", host=f"localhost:{server}")[0] == 200
    assert get(server, "/static/extensions/panel/css/markdown.css", host=f"LOCALHOST:{server}")[0] in (200, 404)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "", "127.0.0.1.evil.example:{port}"])
def test_a_foreign_host_name_is_refused_for_pages_and_files(server, host):
    status, body = get(server, PAGE, host=host.format(port=server))
    assert status == 403 and "does not answer to that host name" in body
    assert get(server, "/", host=host.format(port=server))[0] == 403


def test_dns_rebinding_websocket_is_refused_and_a_loopback_one_is_not(server):
    evil = f"evil.example:{server}"
    status, _ = get(server, f"{PAGE}/ws", host=evil, headers=upgrade_headers(evil, f"http://{evil}"))
    assert status == 403  # Host = Origin, so Tornado's own Origin check would have let it through

    async def loopback():
        socket_ = await open_socket(server, page_token(server))
        socket_.close()

    asyncio.run(loopback())


# ---- signed sessions ----------------------------------------------------------------------
def test_a_made_up_session_id_is_refused_when_sessions_are_signed(server):
    assert get(server, f"{PAGE}?bokeh-session-id=made-up-by-a-student")[0] == 403
    assert get(server, PAGE)[0] == 200

    async def forged():
        from bokeh.util.token import generate_jwt_token

        token = generate_jwt_token("made-up-by-a-student", signed=False)
        socket_ = await websocket_connect(f"ws://127.0.0.1:{server}{PAGE}/ws", subprotocols=["bokeh", token])
        return await socket_.read_message()  # None: Bokeh closed it without a word

    assert asyncio.run(forged()) is None


def test_sessions_are_signed_beyond_loopback_with_a_secret_of_the_run(monkeypatch):
    monkeypatch.delenv("BOKEH_SIGN_SESSIONS", raising=False)
    monkeypatch.delenv("BOKEH_SECRET_KEY", raising=False)
    loopback = Gate("127.0.0.1", 5006, 60)
    assert not loopback.signs_sessions and "sign_sessions" not in loopback.server_options()
    assert loopback.hosts == ["localhost:5006", "127.0.0.1:5006"]
    other_loopback = Gate("127.0.0.2", 5006, 60)
    assert other_loopback.hosts[-1] == "127.0.0.2:5006" and not other_loopback.signs_sessions
    lan, other = Gate("192.168.1.20", 5006, 60, ["class.example", "10.0.0.5:8000"]), Gate("192.168.1.20", 5006, 60)
    options = lan.server_options()
    assert options["sign_sessions"] and len(options["secret_key"]) >= 32 and options["secret_key"] != other.secret_key
    assert lan.hosts == ["localhost:5006", "127.0.0.1:5006", "192.168.1.20:5006", "class.example:80", "10.0.0.5:8000"]
    assert options["websocket_origin"] == lan.hosts
    monkeypatch.setenv("BOKEH_SECRET_KEY", "k" * 44)  # several servers behind one name share a key
    assert Gate("0.0.0.0", 5006, 60).secret_key == b"k" * 44


# ---- the session cap ----------------------------------------------------------------------
def test_a_full_class_gets_a_polite_page_and_closed_sessions_free_their_places():
    async def scenario(server):
        sockets = [await open_socket(server, page_token(server)) for _ in range(MAX_SESSIONS)]
        status, body = get(server, PAGE)
        assert status == 503 and f"The class is full: {MAX_SESSIONS} sessions are open; try again in a minute" in body
        from bokeh.util.token import generate_jwt_token  # a websocket to a new session counts as a session too

        with pytest.raises(HTTPClientError, match="503"):
            await websocket_connect(f"ws://127.0.0.1:{server}{PAGE}/ws",
                                    subprotocols=["bokeh", generate_jwt_token("another", signed=False)])
        assert get(server, "/")[0] == 200  # the index is no session
        for socket_ in sockets:
            socket_.close()
        deadline = time.monotonic() + 30  # Bokeh drops a session ~5 s after its last connection
        while (status := get(server, PAGE)[0]) == 503 and time.monotonic() < deadline:
            await asyncio.sleep(1)
        assert status == 200

    with serving(MAX_SESSIONS) as port:
        asyncio.run(scenario(port))


# ---- uploads ------------------------------------------------------------------------------
def test_a_message_the_size_of_a_16_mb_upload_reaches_the_session(server):
    """A 16 MB file goes up as ~21.3 MB of base64 in one message, over Bokeh's default 20 MB."""

    async def scenario():
        socket_ = await open_socket(server, page_token(server))
        padding = "A" * (16 * 2**20 * 4 // 3 + 2**20)
        await socket_.write_message(json.dumps({"msgid": "upload", "msgtype": "PATCH-DOC"}))
        await socket_.write_message(json.dumps({"padding": padding}))
        await socket_.write_message(json.dumps({"events": []}))
        deadline = time.monotonic() + 120
        while True:  # the page may patch the document first (it fills in as its first picture comes)
            part = await asyncio.wait_for(socket_.read_message(), max(1.0, deadline - time.monotonic()))
            assert part is not None, f"the server closed the connection (code {socket_.close_code})"
            header = json.loads(part) if isinstance(part, str) and part.startswith("{") else {}
            if header.get("reqid") == "upload":
                break
        assert header["msgtype"] == "OK"
        socket_.close()

    asyncio.run(scenario())
    assert MAX_MESSAGE_BYTES > MAX_FILE_BYTES * 4 / 3  # the page's stated limit, as base64, fits


# ---- listening --------------------------------------------------------------------------
def test_loopback_is_the_default_address():
    from odeviz.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.address == "127.0.0.1" and Gate(args.address, args.port, args.max_sessions).is_loopback


def test_a_port_in_use_is_one_line_and_exit_code_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        result = subprocess.run([sys.executable, "-m", "odeviz", "serve", "--port", str(port)], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == f"odeviz: error: port {port} is in use (another odeviz serve? choose a free one with --port)"
    assert "Traceback" not in result.stdout + result.stderr


def test_serving_beyond_loopback_warns_on_stderr():
    with socket.socket() as busy:  # the warning comes before listening: this run never listens
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        result = subprocess.run([sys.executable, "-m", "odeviz", "serve", "--port", str(port), "--address", "0.0.0.0"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    warning, error = result.stderr.strip().splitlines()
    assert warning.startswith("odeviz: warning: serving beyond this machine on 0.0.0.0") and "sessions signed" in warning
    assert error.startswith(f"odeviz: error: port {port} is in use") and result.returncode == 2


def test_a_write_to_a_closed_tab_leaves_no_traceback_and_other_errors_still_do(caplog, monkeypatch):
    from tornado.websocket import WebSocketClosedError

    # As a fresh server has them, whatever ran before in this process (Bokeh may have stopped its
    # loggers' records at "bokeh", short of the root where caplog listens).
    for name in ("bokeh.server.views.ws", "bokeh.server.views", "bokeh.server", "bokeh", "panel.io.document", "panel.io",
                 "panel"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "disabled", False)
        monkeypatch.setattr(logger, "propagate", True)
        monkeypatch.setattr(logger, "level", logging.NOTSET)

    from odeviz.cli.serve import quiet_closed_tabs

    async def fail(error):
        raise error

    async def scenario():
        quiet_closed_tabs(asyncio.get_running_loop())
        for error in (WebSocketClosedError(), RuntimeError("a real bug")):
            task = asyncio.ensure_future(fail(error))  # as Panel's writes: failed, never awaited
            await asyncio.sleep(0)
            del task
            gc.collect()

    with caplog.at_level("WARNING"):
        asyncio.run(scenario())
        logging.getLogger("bokeh.server.views.ws").warning("Failed sending message as connection was closed")
        logging.getLogger("panel.io.document").warning("Failed sending message as connection was closed")
        logging.getLogger("bokeh.server.views.ws").warning("something else")
    logged = [record.getMessage() + str(record.exc_info) for record in caplog.records]
    assert len(logged) == 2 and "a real bug" in logged[0] and logged[1].startswith("something else")


def test_the_warm_up_imports_what_the_first_page_would_wait_for():
    """``odeviz serve`` listens first; its warm-up then imports the pages (and torch) and Panel's Markdown
    renderer (imported by the first Markdown pane a session shows), so the first page does not."""
    script = (
        "import sys\n"
        "from odeviz.cli.serve import _warm_up\n"
        "from odeviz.views.lesson_file import DEFAULT_LESSON\n"
        "assert 'torch' not in sys.modules and 'markdown_it' not in sys.modules\n"
        "_warm_up(DEFAULT_LESSON)\n"
        "assert {'torch', 'odeviz.views.pages', 'markdown', 'markdown_it'} <= set(sys.modules)\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert finished.returncode == 0, finished.stderr[-2000:]
