"""Helpers shared by the browser tests and the benchmarks: serve an app, drive Debian's Chromium."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
REPO = Path(__file__).resolve().parent.parent


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.002) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedURL(str):
    """The URL a server answers at, with the server's process id as ``pid``."""

    pid: int


@contextlib.contextmanager
def running(command: list[str], url: str, timeout: float = 120.0, cwd: Path = REPO, log_path: Path | None = None):
    """Run a server ``command`` until ``url`` answers; yield it (a :class:`ServedURL`); then stop its
    whole process group. Its output goes to ``log_path`` if given.

    If it never answers, the error carries the end of the server's output.
    """
    with open(log_path, "w+") if log_path else tempfile.TemporaryFile("w+") as log:
        # This checkout's odeviz, even when another one is pip-installed (git worktrees).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        server = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=30):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"{command[2:4]} did not answer at {url}:\n{log.read()[-3000:]}") from None
                    time.sleep(0.5)
            served_url = ServedURL(url)
            served_url.pid = server.pid
            yield served_url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def served(app: str = "apps/continuity.py", timeout: float = 120.0):
    """``panel serve`` one app on a free local port; a context manager yielding the page's URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "panel", "serve", str(REPO / app), "--port", str(port), "--address", "127.0.0.1",
        "--allow-websocket-origin", f"127.0.0.1:{port}",
    ]
    return running(command, f"http://127.0.0.1:{port}/{Path(app).stem}", timeout)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# Reads a named ColumnDataSource's column from the page's Bokeh document.
SOURCE_COLUMN_JS = """([name, column]) => {
  for (const doc of Bokeh.documents) {
    const source = doc.get_model_by_name(name);
    if (source) return Array.from(source.data[column]);
  }
  return null;
}"""


def wait_for_first_picture(page, timeout: float = 90_000) -> None:
    """Wait until a served page has drawn its first snapshot: its status line, which says "preparing"
    until then and is redrawn after the plots, names the iteration and no longer says it."""
    page.wait_for_selector("text=/Iteration \\d+/", timeout=timeout)
    page.wait_for_selector(".odeviz-preparing", state="detached", timeout=timeout)


def wait_for_source(page, name: str, timeout: float = 90_000) -> None:
    """Wait until the named ColumnDataSource of a served page holds data: the page appears at once and
    fills in with its first picture."""
    page.wait_for_function(
        "([name]) => Bokeh.documents.some(d => { const s = d.get_model_by_name(name); return s && s.data.x && s.data.x.length; })",
        arg=[name], timeout=timeout,
    )


def threads_and_rss(pid: int) -> tuple[int, int]:
    """A process's thread count and resident memory in bytes."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(status["Threads"]), int(status["VmRSS"].split()[0]) * 1024


class LightClient:
    """One Bokeh client session of ``url`` on an event loop in a thread of its own: it holds its
    page's document as the server updates it, renders nothing, and counts its picture updates (of
    ``picture_source``: by default the classifier page's first trajectory picture).

    It says it shows the page, as a browser does, ``ready_after`` seconds after pulling it.
    """

    PICTURE_SOURCE = "trajectories-0"

    def __init__(self, url: str, arguments: dict | None = None, train: bool = True, ready_after: float = 0.0,
                 picture_source: str = PICTURE_SOURCE) -> None:
        self.pictures = 0
        self.messages = 0  # PATCH-DOC messages received since the page said it is shown
        self.messages_by_first_picture = None
        self.disconnected = None  # (close code, reason) once the server's websocket closed
        self.picture_source = picture_source
        self.session = None
        self._loop = None
        self._opened = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, args=(url, arguments, train, ready_after), daemon=True)
        self._thread.start()
        self._opened.wait()
        if self._error is not None:
            raise self._error

    def _serve(self, url: str, arguments: dict | None, train: bool, ready_after: float) -> None:
        from bokeh.client import pull_session
        from bokeh.events import DocumentReady
        from tornado.ioloop import IOLoop

        from odeviz.views import PAGES  # noqa: F401 - the pages' own models must be known to read their documents

        asyncio.set_event_loop(asyncio.new_event_loop())
        self._loop = IOLoop.current()
        try:
            self.session = pull_session(url=url, arguments=arguments, io_loop=self._loop)
            time.sleep(ready_after)
            # What a browser says once it shows the page: Panel sends held updates only after it.
            self.session.document.callbacks.send_event(DocumentReady())
            source = self.session.document.get_model_by_name(self.picture_source)
            if source is not None:  # the classifier page's
                source.on_change("data", lambda _attr, _old, _new: self._count())
            if train:
                press_train(self.session.document)
        except BaseException as error:  # told to the caller
            self._error = error
        finally:
            self._opened.set()
        if self._error is None:
            self._loop.run_sync(self._read_updates)
        self._loop.close(all_fds=True)

    async def _read_updates(self) -> None:
        """Apply the server's updates until the session closes. (Bokeh's own client loop awaits itself
        once per message, so a session that streams for minutes dies of recursion depth.)"""
        connection = self.session._connection
        while (message := await connection._pop_message()) is not None:
            if message.msgtype == "PATCH-DOC":
                self.messages += 1
                self.session._handle_patch(message)
        socket = getattr(connection, "_socket", None)
        self.disconnected = (getattr(socket, "close_code", None), getattr(socket, "close_reason", None))

    def _count(self) -> None:
        self.pictures += 1
        if self.messages_by_first_picture is None:
            self.messages_by_first_picture = self.messages

    def read(self) -> tuple[int, int]:
        """The last iteration its history shows and its picture count, read on its own loop."""
        result = self.on_loop(lambda document: (_last_iteration(document), self.pictures))
        return result if result is not None else (0, self.pictures)

    def untrained(self) -> bool | None:
        """Whether its status line says the model is untrained and waits for Train; None if its loop
        does not answer."""
        return self.on_loop(lambda document: any(UNTRAINED_WORDS in str(getattr(m, "text", "")) for m in document.models))

    def press_train(self) -> None:
        self.on_loop(press_train)

    def on_loop(self, read: Callable[[Any], Any]) -> Any:
        """``read(document)`` on the client's own loop (None if it does not answer within 30 s)."""
        done, result = threading.Event(), []
        self._loop.add_callback(lambda: result.append(read(self.session.document)) or done.set())
        done.wait(30)
        return result[0] if result else None

    def close(self, wait: bool = True) -> None:
        self._loop.add_callback(self.session.close)
        if wait:
            self._thread.join(30)

    @staticmethod
    def close_all(clients: list[LightClient]) -> None:
        """Close every client, then wait for them all (one by one, a loaded run took minutes)."""
        for client in clients:
            client.close(wait=False)
        for client in clients:
            client._thread.join(30)


UNTRAINED_WORDS = "untrained: press"  # the status line of a model nobody trained yet


def press_train(document) -> None:
    """Space on the page: the keyboard shortcut's message, as a browser sends it."""
    keys = next(m for m in document.models
                if type(m).__name__ == "ReactiveHTML" and "presses" in m.data.properties())
    keys.data.action = "train"
    keys.data.presses += 1


def _last_iteration(document) -> int:
    iterations = document.get_model_by_name("history").data["iteration"]
    return int(iterations[-1]) if len(iterations) else 0


def open_train_close(browser, url: str) -> None:
    """One session of a served page: open it in a new tab, wait for its first picture, press Train,
    wait for a trained iteration, close the tab."""
    tab = browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        tab.goto(url)
        wait_for_first_picture(tab, timeout=120_000)
        tab.get_by_role("button", name="Train", exact=True).click()
        tab.wait_for_selector("text=/Iteration [1-9]/", timeout=120_000)
    finally:
        tab.close()


def settled(pid: int, threads_at_most: int | None = None, timeout: float = 60.0) -> tuple[int, int]:
    """A server's threads and RSS once its closed sessions have ended: its threads down to
    ``threads_at_most`` (or, without it, unchanged for 8 s), then the time odeviz takes to end a
    closed session and give its memory back (a training thread ends with its tab; the session, its
    models and their heap only seconds later)."""
    from odeviz.cli.serve import SESSION_END_SECONDS

    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        threads, _ = threads_and_rss(pid)
        if threads != last:
            last, since = threads, time.monotonic()
        done = threads <= threads_at_most if threads_at_most is not None else time.monotonic() - since >= 8
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(SESSION_END_SECONDS + 1.0)
    return threads_and_rss(pid)


# The screen box of the data frame of the plot that draws a named ColumnDataSource (BokehJS views).
PLOT_FRAME_JS = """([name, scroll]) => {
  const seen = new Set();
  function* walk(view) {
    if (!view || seen.has(view)) return;
    seen.add(view);
    yield view;
    for (const child of (view.child_views ?? [])) yield* walk(child);
    if (typeof view.children === 'function') for (const child of view.children()) yield* walk(child);
  }
  const roots = Bokeh.index instanceof Map ? [...Bokeh.index.values()] : Object.values(Bokeh.index);
  for (const root of roots) for (const view of walk(root)) {
    const renderers = view.model && view.frame ? view.model.renderers ?? [] : [];
    if (renderers.some((r) => r.data_source && r.data_source.name === name)) {
      if (scroll) view.el.scrollIntoView({block: "center", behavior: "instant"});
      const rect = view.el.getBoundingClientRect(), frame = view.frame.bbox;
      return {x: rect.left + frame.left, y: rect.top + frame.top, width: frame.width, height: frame.height};
    }
  }
  return null;
}"""


def plot_frame(page, source_name: str, timeout: float = 10.0) -> dict:
    """The on-screen box ({x, y, width, height}) of the data frame of the plot drawing ``source_name``,
    scrolled to the middle of the window first (a click below the fold lands nowhere), once it has
    stopped moving (a loaded browser may still be laying the page out)."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        box = page.evaluate(PLOT_FRAME_JS, [source_name, True])
        assert box is not None, f"no plot draws {source_name!r}"
        if box == last or time.monotonic() > deadline:
            return box
        last = box
        page.wait_for_timeout(300)
