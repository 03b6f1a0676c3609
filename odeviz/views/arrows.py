"""Arrows of one on-screen length, drawn as three segments (a shaft and two head strokes).

Directions are turned into pixels of a fixed-size frame before normalising, so a drawn arrow points
the way a trajectory actually goes on screen whatever the extents of the two axes.
"""
from __future__ import annotations

import numpy as np

SEGMENTS_PER_ARROW = 3  # shaft, then the two strokes of the head


def arrow_segments(x, y, u, v, px_per_x: float, px_per_y: float, length_px: float = 14.0, head_px: float = 4.5):
    """(x0, y0, x1, y1) of arrows centred at (x, y) along (u, v), in data units; each array has
    ``SEGMENTS_PER_ARROW`` × len(x) entries, all shafts first (so per-arrow values are ``np.tile``d)."""
    dx, dy = np.asarray(u, dtype=float) * px_per_x, np.asarray(v, dtype=float) * px_per_y
    norm = np.hypot(dx, dy)
    norm[norm == 0] = 1.0  # a resting point gets a zero-length arrow, not a NaN
    ux, uy = dx / norm, dy / norm
    tip_x = x + 0.5 * length_px * ux / px_per_x
    tip_y = y + 0.5 * length_px * uy / px_per_y
    parts = [(2 * x - tip_x, 2 * y - tip_y, tip_x, tip_y)]
    for angle in (2.6, -2.6):  # the two strokes of the head, ±149° from the shaft
        hx = ux * np.cos(angle) - uy * np.sin(angle)
        hy = ux * np.sin(angle) + uy * np.cos(angle)
        parts.append((tip_x, tip_y, tip_x + head_px * hx / px_per_x, tip_y + head_px * hy / px_per_y))
    return tuple(np.concatenate(column) for column in zip(*parts))
