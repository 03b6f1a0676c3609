"""Sessions of every page against one `odeviz serve`, in a real browser: each page opened, trained and
closed again and again. Afterwards the server's threads are back to what they were after the first
round, and its memory has not grown by a model per session (a leak like Table 1's old one, 150 MB a
closed session, fails at once). `benchmarks/bench_lifecycle.py` runs 30 and more cycles of each page."""
import sys

import pytest

from harness import free_port, open_train_close, running, settled
from odeviz.views import PAGES

pytestmark = pytest.mark.browser
ROUNDS = 1  # after the first (imports, caches, first-use allocations): each a session of every page
MAX_GROWTH_BYTES = 50 * 2**20


def test_closed_sessions_of_every_page_leave_no_thread_and_no_model_behind(chromium):
    port = free_port()
    command = [sys.executable, "-m", "odeviz", "serve", "--port", str(port)]
    with running(command, f"http://127.0.0.1:{port}/", timeout=120) as base:
        browser = chromium.page.context.browser
        for slug in PAGES:
            open_train_close(browser, base + slug)
        baseline_threads, baseline_rss = settled(base.pid)
        for _ in range(ROUNDS):
            for slug in PAGES:
                open_train_close(browser, base + slug)
        threads, rss = settled(base.pid, baseline_threads)
        assert threads <= baseline_threads, (threads, baseline_threads)  # every trainer thread ended
        assert rss - baseline_rss < MAX_GROWTH_BYTES, f"grew {(rss - baseline_rss) / 2**20:.0f} MB"
    assert chromium.errors == []
