"""Animations of a snapshot's flow over time, rasterised server-side from its numpy arrays with
Pillow (no browser, no plotting library): the CNF's density transform (the paper's Figure 5) and the
classifier's points carried from t = 0 to 1. Each ``*_frames`` function yields one RGB image per
time so the caller can report progress; :func:`gif_bytes` encodes them.
"""
from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
from bokeh.palettes import Viridis256
from PIL import Image, ImageDraw

from ..experiments.classifier import ClassifierSnapshot
from ..experiments.cnf import CNFSnapshot
from .figures import ODE_COLOR, RESNET_COLOR

SIDE = 360  # px of a square frame
CAPTION_HEIGHT = 28
SECONDS_PER_FRAME = 0.08
FINAL_HOLD = 12  # the last frame stays up this many frame times before the loop starts again
PARTICLES_DRAWN = 400
POINTS_DRAWN = 300
VIRIDIS = np.array([[int(color[i:i + 2], 16) for i in (1, 3, 5)] for color in Viridis256], dtype=np.uint8)
CLASS_RGB = tuple(tuple(int(color[i:i + 2], 16) for i in (1, 3, 5)) for color in (ODE_COLOR, RESNET_COLOR))


def _colour(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (rows along y, bottom first) as a Viridis RGB image (rows top first)."""
    index = np.clip(np.nan_to_num(values) * 255, 0, 255).astype(np.uint8)
    return VIRIDIS[index[::-1]]


def _to_pixels(points: np.ndarray, low_x: float, high_x: float, low_y: float, high_y: float) -> np.ndarray:
    """Data coordinates (n, 2) as pixel coordinates of a SIDE × SIDE frame (y up)."""
    x = (points[:, 0] - low_x) / (high_x - low_x) * (SIDE - 1)
    y = (1.0 - (points[:, 1] - low_y) / (high_y - low_y)) * (SIDE - 1)
    return np.stack([x, y], axis=1)


def _with_caption(image: Image.Image, text: str) -> Image.Image:
    framed = Image.new("RGB", (SIDE, SIDE + CAPTION_HEIGHT), "white")
    framed.paste(image, (0, CAPTION_HEIGHT))
    ImageDraw.Draw(framed).text((8, 8), text, fill=(34, 34, 34))
    return framed


def cnf_frames(snapshot: CNFSnapshot) -> Iterator[Image.Image]:
    """The base Gaussian flowing into the data: at each particle time, the density of the nearest
    density frame (scaled to its own peak, as on the page) and the particles on it."""
    for path_index, fraction in enumerate(snapshot.path_fractions):
        frame = int(np.argmin(np.abs(snapshot.fractions - fraction)))
        density = np.exp(snapshot.log_density[frame])
        image = Image.fromarray(_colour(density / max(float(density.max()), 1e-300))).resize((SIDE, SIDE), Image.BILINEAR)
        draw = ImageDraw.Draw(image)
        for x, y in _to_pixels(snapshot.particles[path_index][:PARTICLES_DRAWN], *snapshot.extent):
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=(255, 255, 255))
        yield _with_caption(image, f"CNF on {snapshot.target}: t = {100 * fraction:.0f} % of the flow from N(0, I) "
                                   f"to the data (iteration {snapshot.iteration})")


def classifier_frames(snapshot: ClassifierSnapshot) -> Iterator[Image.Image]:
    """The data carried by the ODE-Net's flow from h(0) = x to h(1), trails behind, coloured by class."""
    shown = np.linspace(0, len(snapshot.labels) - 1, min(POINTS_DRAWN, len(snapshot.labels))).astype(int)
    box = (*snapshot.box, *snapshot.box)
    paths = np.stack([_to_pixels(states[shown], *box) for states in snapshot.states])  # (T, n, 2)
    trail_colours = [tuple(int(255 - 0.35 * (255 - c)) for c in rgb) for rgb in CLASS_RGB]
    for time_index, t in enumerate(snapshot.times):
        image = Image.new("RGB", (SIDE, SIDE), "white")
        draw = ImageDraw.Draw(image)
        for point, label in enumerate(snapshot.labels[shown]):
            if time_index:
                draw.line([tuple(p) for p in paths[: time_index + 1, point]], fill=trail_colours[int(label)], width=1)
        for (x, y), label in zip(paths[time_index], snapshot.labels[shown]):
            draw.ellipse((x - 2.5, y - 2.5, x + 2.5, y + 2.5), fill=CLASS_RGB[int(label)])
        yield _with_caption(image, f"ODE-Net flow on {snapshot.dataset}: t = {t:.2f} (iteration {snapshot.iteration}, "
                                   f"accuracy {100 * snapshot.accuracy:.0f} %)")


# Which snapshots can be animated, how, and under which file name.
ANIMATIONS = {CNFSnapshot: ("cnf-density-transform", cnf_frames), ClassifierSnapshot: ("classifier-flow", classifier_frames)}


def animation_for(snapshot) -> tuple[str, object] | None:
    """(file stem, frames function) for a snapshot that has a flow over time, else None."""
    return next((entry for kind, entry in ANIMATIONS.items() if isinstance(snapshot, kind)), None)


def frame_count(snapshot) -> int:
    return len(snapshot.path_fractions) if isinstance(snapshot, CNFSnapshot) else len(snapshot.times)


def gif_bytes(frames: list[Image.Image]) -> bytes:
    """An endlessly looping GIF of ``frames``, the last one held a moment."""
    milliseconds = round(1000 * SECONDS_PER_FRAME)
    durations = [milliseconds] * (len(frames) - 1) + [milliseconds * FINAL_HOLD]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return buffer.getvalue()
