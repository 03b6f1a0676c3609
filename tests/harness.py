"""Helpers shared by the browser tests and the benchmarks: serve an app, drive Debian's Chromium."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(command: list[str], url: str, timeout: float = 120.0, cwd: Path = REPO):
    """Run a server ``command`` until ``url`` answers; yield; then stop its whole process group.

    If it never answers, the error carries the end of the server's output.
    """
    with tempfile.TemporaryFile("w+") as log:
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
            yield url
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
