"""What every file a user gives odeviz shares: one size limit, checked before anything is parsed."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

MAX_FILE_BYTES = 100 * 2**20  # 100 MB: far more than a 2-D point set or a few series need, and what a server can hold

Parsed = TypeVar("Parsed")


def check_size(size: int, what: str) -> None:
    """ValueError if ``size`` bytes are over the limit (``what`` names the file in the message)."""
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{what} is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")


def read_user_file(path, parse: Callable[[bytes, str], Parsed]) -> Parsed:
    """``parse(content, file name)`` of the file at ``path``, its size checked before it is read."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r} does not exist")
    check_size(path.stat().st_size, f"file {path.name!r}")
    return parse(path.read_bytes(), path.name)
