"""Pure functions from a :class:`ContinuitySnapshot` (or history columns) to HoloViews elements.

Time/depth is always the dimension ``t`` and the hidden state always ``h``, so the trajectory plots
share (link) their axes when they sit in one layout.
"""
from __future__ import annotations

from typing import Sequence

import holoviews as hv
import numpy as np

from ..data import CONTINUITY_TARGETS
from ..experiments.continuity import ContinuitySnapshot

FRAME = dict(frame_width=330, frame_height=230)
TRAJECTORY_CMAP = "viridis"
ODE_COLOR, RESNET_COLOR, TARGET_COLOR = "#2b59c3", "#e8590c", "#222222"
T = hv.Dimension("t", label="time t  (ResNet: depth k/L)", range=(0.0, 1.0))
H = hv.Dimension("h", label="hidden state h")
X = hv.Dimension("x", label="input x = h(0)")


COLOR_BY_INPUT = dict(color="x", cmap=TRAJECTORY_CMAP, clim=(-1.0, 1.0))


def _frame_opts(snapshot: ContinuitySnapshot, title: str) -> dict:
    return dict(title=title, ylim=snapshot.h_range, xlim=(0.0, 1.0), show_grid=True, **FRAME)


def trajectories(times: np.ndarray, states: np.ndarray, inputs: np.ndarray) -> hv.Segments:
    """Each input's path through the (t, h) plane, as the segments between consecutive times.

    ``states`` is (len(times), len(inputs)). One flat table of segments renders far faster in
    HoloViews than one path object per trajectory, which matters at 10 frames per second.
    """
    steps = len(times) - 1
    return hv.Segments(
        {
            "t": np.repeat(times[:-1], len(inputs)),
            "h": states[:-1].ravel(),
            "t_end": np.repeat(times[1:], len(inputs)),
            "h_end": states[1:].ravel(),
            "x": np.tile(inputs, steps),
        },
        kdims=[T, H, "t_end", "h_end"],
        vdims=[X],
    )


def _points(times: np.ndarray, states: np.ndarray, inputs: np.ndarray) -> dict:
    return {"t": np.repeat(times, len(inputs)), "h": states.ravel(), "x": np.tile(inputs, len(times))}


def field_arrows(
    snapshot: ContinuitySnapshot, length_px: float = 14.0, head_px: float = 4.5
) -> hv.Segments:
    """dh/dt = f(t, h) as arrows of one on-screen length, pointing along (1, f) in the (t, h) plane.

    Directions are computed in pixels of the fixed-size frame, so the drawn slopes are the true
    slopes of the trajectories whatever the aspect ratio of the axes.
    """
    width, height = FRAME["frame_width"], FRAME["frame_height"]
    low, high = snapshot.h_range
    px_per_t, px_per_h = width / 1.0, height / (high - low)
    dx, dy = np.full_like(snapshot.field_dh, px_per_t), snapshot.field_dh * px_per_h
    norm = np.hypot(dx, dy)
    ux, uy = dx / norm, dy / norm
    tip_t = snapshot.field_t + 0.5 * length_px * ux / px_per_t
    tip_h = snapshot.field_h + 0.5 * length_px * uy / px_per_h
    tail_t = snapshot.field_t - 0.5 * length_px * ux / px_per_t
    tail_h = snapshot.field_h - 0.5 * length_px * uy / px_per_h
    segments = [(tail_t, tail_h, tip_t, tip_h)]
    for angle in (2.6, -2.6):  # the two strokes of the head, ±149° from the shaft
        hx = ux * np.cos(angle) - uy * np.sin(angle)
        hy = ux * np.sin(angle) + uy * np.cos(angle)
        segments.append((tip_t, tip_h, tip_t + head_px * hx / px_per_t, tip_h + head_px * hy / px_per_h))
    columns = [np.concatenate(parts) for parts in zip(*segments)]
    slope = np.tile(snapshot.field_dh, len(segments))
    return hv.Segments(
        (*columns, slope), kdims=[T, H, "t_end", "h_end"], vdims=[hv.Dimension("dh/dt", label="f(t, h) = dh/dt")]
    ).opts(color="#b8bec9", line_width=1.2, tools=[])


def resnet_plot(snapshot: ContinuitySnapshot, highlighted: Sequence[int] = ()) -> hv.Overlay:
    """The ResNet's hidden states after each block: discrete states joined by straight segments."""
    title = f"ResNet: {snapshot.depth} residual block{'s' if snapshot.depth > 1 else ''}, discrete steps"
    path = trajectories(snapshot.resnet_depth, snapshot.resnet_states, snapshot.inputs).opts(
        line_width=1.5, tools=["hover"], **COLOR_BY_INPUT
    )
    states = hv.Scatter(_points(snapshot.resnet_depth, snapshot.resnet_states, snapshot.inputs), T, [H, X]).opts(
        size=5, tools=["hover"], **COLOR_BY_INPUT
    )
    chosen = highlight(snapshot.resnet_depth, snapshot.resnet_states, snapshot.inputs, highlighted)
    return (path * states * chosen).opts(**_frame_opts(snapshot, title))


def ode_plot(snapshot: ContinuitySnapshot, highlighted: Sequence[int] = ()) -> hv.Overlay:
    """Continuous trajectories over the learned vector field, circles where the solver evaluated f."""
    title = f"ODE-Net: {snapshot.method} evaluated f {snapshot.nfe_forward} times"
    path = trajectories(snapshot.ode_times, snapshot.ode_states, snapshot.inputs).opts(
        line_width=2, tools=["hover"], **COLOR_BY_INPUT
    )
    inside = (snapshot.eval_times >= 0.0) & (snapshot.eval_times <= 1.0)
    circles = hv.Scatter(
        _points(snapshot.eval_times[inside], snapshot.eval_states[inside], snapshot.inputs), T, [H, X],
        label="evaluations of f",
    ).opts(marker="circle", size=5, fill_color="white", line_color="#333333", line_width=1, tools=["hover"])
    chosen = highlight(snapshot.ode_times, snapshot.ode_states, snapshot.inputs, highlighted)
    return (field_arrows(snapshot) * path * chosen * circles).opts(
        legend_position="bottom_left", **_frame_opts(snapshot, title)
    )


def euler_plot(snapshot: ContinuitySnapshot, highlighted: Sequence[int] = ()) -> hv.Overlay:
    """The ODE-Net's own f integrated by Euler in L steps (a shared-weight ResNet), over its solution."""
    title = f"ResNet = Euler: L = {snapshot.depth}, max |Δh(1)| = {snapshot.euler_deviation:.2g}"
    exact = trajectories(snapshot.ode_times, snapshot.ode_states, snapshot.inputs).opts(color="#c9ced6", line_width=3)
    euler = trajectories(snapshot.euler_times, snapshot.euler_states, snapshot.inputs).opts(
        line_width=1.5, line_dash="dashed", **COLOR_BY_INPUT
    )
    steps = hv.Scatter(_points(snapshot.euler_times, snapshot.euler_states, snapshot.inputs), T, [H, X]).opts(
        size=4, tools=["hover"], **COLOR_BY_INPUT
    )
    chosen = highlight(snapshot.euler_times, snapshot.euler_states, snapshot.inputs, highlighted)
    return (exact * euler * steps * chosen).opts(**_frame_opts(snapshot, title))


def learned_map_plot(snapshot: ContinuitySnapshot) -> hv.Overlay:
    """h(1) against the input x: the target map, the training data, and what each model learned."""
    dense = np.linspace(-1.0, 1.0, 201)
    output = hv.Dimension("h", label="output h(1)")
    target = hv.Curve((dense, CONTINUITY_TARGETS[snapshot.target](dense)), X, output, label="target g(x)").opts(
        color=TARGET_COLOR, line_dash="dotted", line_width=2
    )
    data = hv.Scatter((snapshot.train_x, snapshot.train_y), X, output, label="training data").opts(
        color="#adb5bd", size=4
    )
    ode = hv.Curve((snapshot.inputs, snapshot.ode_outputs), X, output, label="ODE-Net").opts(color=ODE_COLOR, line_width=2)
    resnet = hv.Curve((snapshot.inputs, snapshot.resnet_outputs), X, output, label="ResNet").opts(
        color=RESNET_COLOR, line_width=2
    )
    return (target * data * ode * resnet).opts(
        title=f"What each model learned ({snapshot.target})", ylim=snapshot.h_range, legend_position="top_left",
        show_grid=True, **FRAME,
    )


def selectable_inputs(snapshot: ContinuitySnapshot) -> hv.Scatter:
    """The drawn inputs at their ODE-Net outputs, coloured like their trajectories; tap or box-select them."""
    return hv.Scatter(
        (snapshot.inputs, snapshot.ode_outputs, snapshot.inputs), X, [hv.Dimension("h", label="output h(1)"), "x_color"]
    ).opts(
        color="x_color", cmap=TRAJECTORY_CMAP, clim=(-1.0, 1.0), size=9, line_color="white",
        tools=["tap", "box_select", "hover"], nonselection_alpha=0.35,
    )


def highlight(times: np.ndarray, states: np.ndarray, inputs: np.ndarray, indices: Sequence[int]) -> hv.Segments:
    """The chosen trajectories, thick and dark, to draw on top of a trajectory plot."""
    chosen = sorted({i for i in indices if 0 <= i < len(inputs)})
    return trajectories(times, states[:, chosen], inputs[chosen]).opts(color="#111111", line_width=4, alpha=0.85)


def nearest_trajectory(times: np.ndarray, states: np.ndarray, t: float, h: float) -> int:
    """Index of the trajectory passing closest to h at time t."""
    at_t = np.array([np.interp(t, times, states[:, i]) for i in range(states.shape[1])])
    return int(np.argmin(np.abs(at_t - h)))


def loss_plot(history: dict) -> hv.Overlay:
    iteration = hv.Dimension("iteration", label="training iteration")
    loss = hv.Dimension("loss", label="mean squared error")
    ode = hv.Curve((history["iteration"], history["loss_ode"]), iteration, loss, label="ODE-Net").opts(color=ODE_COLOR)
    resnet = hv.Curve((history["iteration"], history["loss_resnet"]), iteration, loss, label="ResNet").opts(
        color=RESNET_COLOR
    )
    return (ode * resnet).opts(
        title="Training loss", logy=True, legend_position="top_right", show_grid=True, tools=["hover"], **FRAME
    )


def nfe_plot(history: dict) -> hv.Overlay:
    iteration = hv.Dimension("iteration", label="training iteration")
    nfe = hv.Dimension("nfe", label="evaluations of f per iteration")
    forward = hv.Curve((history["iteration"], history["nfe_forward"]), iteration, nfe, label="NFE forward").opts(
        color=ODE_COLOR
    )
    backward = hv.Curve((history["iteration"], history["nfe_backward"]), iteration, nfe, label="NFE backward").opts(
        color="#7048e8", line_dash="dashed"
    )
    return (forward * backward).opts(
        title="ODE-Net cost (NFE)", legend_position="top_left", show_grid=True, tools=["hover"], **FRAME
    )
