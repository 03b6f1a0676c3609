"""Process-wide settings shared by every entry point (served apps, the CLI, notebooks)."""
from __future__ import annotations

import functools
import gc
import os
import sys
from pathlib import Path

__all__ = ["DATA_ROOT_VARIABLE", "configure_session", "configure_torch", "data_root", "import_torch_compiler_soon",
           "resolve_in_root", "return_freed_memory", "share_heap_between_threads"]

# The one folder whose contents a served page may read by a path typed in the page (``odeviz serve
# --data-root DIR`` sets it); unset, pages take no server-side paths at all.
DATA_ROOT_VARIABLE = "ODEVIZ_DATA_ROOT"

# Where the Jupyter server's Panel extension (installed with panel) serves panel's own dist/ folder.
JUPYTER_PANEL_DIST = "panel-preview/static/extensions/panel/"


def configure_torch() -> None:
    """One intra-op thread for odeviz's tiny nets (see ``numerics.device``); torch loads here, on first use."""
    from .numerics.device import configure_torch as configure

    configure()


@functools.cache
def import_torch_compiler_soon() -> None:
    """Import torch's compiler (``torch._dynamo``, ~1.8 s here) on a thread of its own, once per process.
    torch imports it the first time any optimizer is made, even though nothing is compiled: a page's
    first picture does not wait for it (experiments make Adam at their first step), and its first
    Train must not either."""
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=("torch._dynamo",), name="odeviz-import-torch-compiler",
                     daemon=True).start()


def return_freed_memory() -> None:
    """Free what only reference cycles still hold, then give the heap that freed Python and torch
    objects leave back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    A closed session's page, document and experiment refer to each other, so only the cyclic
    garbage collector frees them, at a moment of its own choosing: without this, a served closed
    session's experiment was still alive seconds after its session ended.
    """
    gc.collect()
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


# How long a training thread may keep the GIL while a server's event loop waits for it (Python's
# default: 5 ms). The loop gives the GIL up at every socket read and write of a frame and waited that
# long each time to get it back from training threads busy with small torch operations: a tolerance
# change on the training continuity page took 1.3-1.6 s to show (p50), 0.4-0.6 s at 1 ms.
SERVED_GIL_SWITCH_SECONDS = 0.001

M_ARENA_MAX = -8  # glibc's mallopt parameter
SERVER_ARENAS = 2


def share_heap_between_threads() -> None:
    """Let every training thread of a server allocate from a couple of shared heaps (glibc's arenas).

    By default glibc gives new threads heaps of their own, up to 8 per core, and keeps each once made:
    a server whose sessions each train on a new thread grew ~110 MB over its first sessions, heap
    that freed tensors left in arenas no later session reused. A no-op where glibc is not the libc.
    """
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_ARENA_MAX, SERVER_ARENAS)


@functools.cache
def _libc():
    # Looked up once: find_library runs ldconfig, too slow for the event loop at every closed tab.
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def in_served_session() -> bool:
    """Whether the code runs for a session of a Panel server (not in a notebook, not headless)."""
    import panel as pn

    return pn.state.curdoc is not None and pn.state.curdoc.session_context is not None


def configure_session() -> None:
    """Panel settings and torch threads for a page, under `panel serve` or in Jupyter."""
    import panel as pn  # here, not at the top: the CLI's training commands never load Panel

    configure_torch()
    served = in_served_session()
    # Inline resources: a notebook then renders offline. Toasts only when served: in a notebook
    # their script would come from a CDN, and the page's own alert shows every message anyway.
    pn.extension(notifications=served, inline=True)
    if served:
        sys.setswitchinterval(SERVED_GIL_SWITCH_SECONDS)
        pn.state.on_session_destroyed(_forget_session_views)
        _serve_session_css_locally(pn.state.curdoc)
    else:
        _serve_notebook_css_locally()


def _serve_session_css_locally(document) -> None:
    """Name the server's own copy of Panel's stylesheets in the session's document from its start.

    Panel names it only when it renders the session's HTML page, after the page is built; a
    component's stylesheet patched before then, or in an update sent by a callback of the document
    at the wrong moment, names the CDN instead, which fails offline (seen on a lesson's step that
    came after seven others: a dozen stylesheets of the CNF page from cdn.holoviz.org).
    """
    import panel as pn
    from panel.io.resources import LOCAL_DIST

    document.template_variables.setdefault("dist_url", f"{pn.state.rel_path}/{LOCAL_DIST}" if pn.state.rel_path else LOCAL_DIST)


def _forget_session_views(context) -> None:
    """Drop what Panel's registry of rendered views still holds of a closed session.

    Panel 1.9 leaves a served session's toast area there when the session ends (measured: one per
    closed tab, each holding its Document, the area and their callbacks for the life of the server).
    """
    import panel as pn

    document = context._document  # the session's (Bokeh's context has no public accessor for it)
    for ref, (_viewable, _root, view_document, _comm) in list(pn.state._views.items()):
        if view_document is document:
            pn.state._views.pop(ref, None)


def _serve_notebook_css_locally() -> None:
    """Make the stylesheets Panel sends with later updates load from the Jupyter server, not a CDN.

    Inline mode inlines the CSS of a cell's first render only. Each later update of an HTML pane
    (a page's status line, ten times a second) re-sends the theme and loading stylesheets as URLs,
    on the CDN unless the document names a ``dist_url``; offline they fail and the layout loses
    its theme (the sidebar is clipped). After every cell, each newly displayed document gets the URL at
    which Panel's own Jupyter server extension serves those files from the installed package.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or _point_documents_at_jupyter in shell.events.callbacks["post_run_cell"]:
        return
    shell.events.register("post_run_cell", _point_documents_at_jupyter)


def _point_documents_at_jupyter(_result=None) -> None:
    import panel as pn

    base_url = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")  # "/" outside JupyterHub
    for _viewable, _root, document, _comm in list(pn.state._views.values()):
        if "dist_url" not in document.template_variables:
            document.template_variables["dist_url"] = base_url.rstrip("/") + "/" + JUPYTER_PANEL_DIST
            # The stylesheets Panel cached at the first render count as sent but were inlined
            # instead: updates that reused them would name stylesheets the browser never had.
            pn.state._stylesheets.pop(document, None)


def data_root() -> Path | None:
    """The data folder the person serving offers to pages, or None when they offer none."""
    root = os.environ.get(DATA_ROOT_VARIABLE)
    return Path(root).resolve() if root else None


def resolve_in_root(root: str | os.PathLike, user_path: str) -> Path:
    """``user_path`` (relative to ``root``, or absolute) as a real path inside ``root``.

    Symlinks are resolved before the check and ``~`` means nothing special, so no spelling of a
    path leaves the folder. The refusal reads the same whether or not the path exists: a page's
    user learns nothing about the server's files outside the folder.
    """
    text = str(user_path).strip()
    if "\0" in text:
        raise ValueError("a path cannot contain a NUL character")
    outside = ValueError(f"{text!r} is outside the data folder the server offers")
    root = Path(root).resolve()
    try:
        candidate = (root / text).resolve()  # an absolute user_path replaces root here
    except (OSError, RuntimeError):  # a symlink loop: refused like any path outside, saying nothing more
        raise outside from None
    if not candidate.is_relative_to(root):
        raise outside
    return candidate
