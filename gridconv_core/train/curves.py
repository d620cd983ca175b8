"""Learning curves of training runs: points, a text table with a sparkline, and a plotly figure.

A curve is a list of points ``{"epoch", "samples", "seconds", "train_loss", "val_mpjpe", "lr"}``
made from a run's per-epoch history (``metrics.jsonl``). plotly is imported only to draw, so the
training path runs without it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io import atomic_write_bytes, atomic_write_text

__all__ = ["curve_points", "sparkline", "curve_table", "curve_figure", "write_figure"]

_BARS = "▁▂▃▄▅▆▇█"


def curve_points(history: Sequence[Mapping[str, Any]], batch_size: int) -> list[dict[str, Any]]:
    """One point per epoch record, with the cumulative number of training samples."""
    points, samples = [], 0
    for record in history:
        samples += int(record["steps"]) * batch_size
        points.append({"epoch": record["epoch"], "samples": samples, "seconds": record["elapsed_s"],
                       "train_loss": record["train_loss"], "val_mpjpe": record.get("val_mpjpe"), "lr": record["lr"]})
    return points


def sparkline(values: Sequence[float | None]) -> str:
    """``▁▂▃..█`` bars of the values on a log scale (a blank for a missing value)."""
    finite = [math.log(v) for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(" " if v is None or not v > 0 or not math.isfinite(v)
                   else _BARS[round((math.log(v) - low) / span * (len(_BARS) - 1))] for v in values)


def curve_table(points: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of a curve, ending with sparklines of the loss and the validation MPJPE."""
    lines = [f"{'epoch':>5} {'samples':>9} {'seconds':>8} {'train loss':>11} {'val MPJPE mm':>13} {'lr':>9}"]
    for p in points:
        val = "-" if p["val_mpjpe"] is None else f"{p['val_mpjpe']:.1f}"
        lines.append(f"{p['epoch']:>5} {p['samples']:>9,} {p['seconds']:>8.1f} {p['train_loss']:>11.5f} {val:>13} "
                     f"{p['lr']:>9.2e}")
    lines.append(f"train loss {sparkline([p['train_loss'] for p in points])}   "
                 f"validation MPJPE {sparkline([p['val_mpjpe'] for p in points])}")
    return "\n".join(lines)


def curve_figure(curves: Mapping[str, Sequence[Mapping[str, Any]]], title: str = "Learning curves") -> Any:
    """A plotly figure: validation MPJPE (log scale) against training samples and against seconds."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from plotly.colors import qualitative

    fig = make_subplots(rows=1, cols=2, subplot_titles=("vs training samples", "vs wall-clock seconds"))
    palette = qualitative.Plotly
    for i, (name, points) in enumerate(curves.items()):
        shown = [p for p in points if p.get("val_mpjpe") is not None]
        line = {"color": palette[i % len(palette)]}  # one colour per run in both panels
        for col, x in ((1, "samples"), (2, "seconds")):
            fig.add_trace(go.Scatter(x=[p[x] for p in shown], y=[p["val_mpjpe"] for p in shown], name=name,
                                     legendgroup=name, showlegend=col == 1, mode="lines+markers", line=line),
                          row=1, col=col)
    fig.update_yaxes(title_text="validation MPJPE (mm)", type="log", col=1)
    fig.update_yaxes(type="log", col=2)
    fig.update_layout(title=title, width=1100, height=480, template="plotly_white")
    return fig


def write_figure(fig: Any, path: str | Path, png: bool = True, self_contained: bool = True) -> list[Path]:
    """Write ``path.html`` and, with ``png`` and when kaleido can render (it drives Chromium),
    ``path.png``; returns what was written. ``self_contained=False`` loads plotly.js from its CDN
    (a 10 kB file instead of 4.6 MB, for figures kept in version control beside their PNG)."""
    path = Path(path)
    written = [path.with_suffix(".html")]
    atomic_write_text(written[0], fig.to_html(include_plotlyjs=True if self_contained else "cdn", full_html=True))
    if not png:
        return written
    try:
        png = fig.to_image(format="png")
    except Exception:  # noqa: BLE001 - no kaleido or no browser for it: the HTML is the figure
        return written
    atomic_write_bytes(path.with_suffix(".png"), png)
    return [*written, path.with_suffix(".png")]
