"""Process-wide settings shared by every entry point (served apps, the CLI, notebooks)."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ROOT_VARIABLE", "configure_session", "configure_torch", "data_root", "resolve_in_root"]

# The one folder whose contents a served page may read by a path typed in the page (``odeviz serve
# --data-root DIR`` sets it); unset, pages take no server-side paths at all.
DATA_ROOT_VARIABLE = "ODEVIZ_DATA_ROOT"


def configure_torch() -> None:
    """One intra-op thread for odeviz's tiny nets (see ``numerics.device``); torch loads here, on first use."""
    from .numerics.device import configure_torch as configure

    configure()


def configure_session() -> None:
    """Panel settings and torch threads for a page, under `panel serve` or in Jupyter."""
    import panel as pn  # here, not at the top: the CLI's training commands never load Panel

    configure_torch()
    served = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    # Inline resources: a notebook then renders offline. Toasts only when served: in a notebook
    # their script would come from a CDN, and the page's own alert shows every message anyway.
    pn.extension(notifications=served, inline=True)


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
