"""Where and how torch runs: the device for the nets, and the thread count for tiny models."""
from __future__ import annotations

import torch


def default_device() -> torch.device:
    """The GPU when there is one, else the CPU (odeviz's main target)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def configure_torch() -> None:
    """One intra-op thread: odeviz's nets are tiny, so a shared thread pool costs more than it gives
    (≈2× slower steps measured here), and the other cores stay free for other sessions and the server."""
    torch.set_num_threads(1)
