"""Helpers shared by the browser tests and the benchmarks: serve an app, drive Debian's Chromium."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
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
def served(app: str = "apps/continuity.py", timeout: float = 120.0):
    """``panel serve`` one app on a free local port; yields the page's URL; stops the server after."""
    port = free_port()
    command = [
        sys.executable, "-m", "panel", "serve", str(REPO / app), "--port", str(port), "--address", "127.0.0.1",
        "--allow-websocket-origin", f"127.0.0.1:{port}",
    ]
    log = open(REPO / "test-artifacts" / f"serve-{port}.log", "w") if (REPO / "test-artifacts").is_dir() else subprocess.DEVNULL
    server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/{Path(app).stem}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    if response.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"panel serve {app} did not come up (exit code {server.poll()})")
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
