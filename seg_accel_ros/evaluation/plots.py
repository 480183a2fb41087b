"""Charts of an evaluation drawn with OpenCV (no plotting library needed): per-frame time
series, path mix, the speed/accuracy trade-off of a sweep, and sample frames side by side.

Every function returns an HxWx3 uint8 RGB image; :func:`save_png` writes one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_accel_ros.evaluation.outputs import frame_caption
from seg_accel_ros.evaluation.scoring import FrameOutcome
from seg_accel_ros.evaluation.sources import EvalFrame
from seg_accel_ros.visualization import (
    PATH_COLORS,
    colorize,
    palette_lut,
    put_caption,
    side_by_side,
)

Color = tuple[int, int, int]
FONT = cv2.FONT_HERSHEY_SIMPLEX
INK: Color = (40, 40, 40)
GRID: Color = (225, 225, 225)
SERIES_COLORS: tuple[Color, ...] = ((31, 119, 180), (255, 127, 14), (44, 160, 44),
                                    (214, 39, 40), (148, 103, 189), (140, 86, 75))
PATH_LAYERS = (("FULL", "path_full", PATH_COLORS[2]), ("LOW", "path_low", PATH_COLORS[1]),
               ("REUSE", "path_reuse", PATH_COLORS[0]))
MARGIN = (72, 24, 56, 52)  # left, right, top, bottom


@dataclass
class Series:
    """One line of a chart: points (x, y); y None leaves a gap."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    color: Color
    markers: bool = False


@dataclass
class Axes:
    """Maps data coordinates to pixels inside a chart's plot area."""

    x0: float
    x1: float
    y0: float
    y1: float
    left: int
    top: int
    right: int
    bottom: int

    def px(self, x: float, y: float) -> tuple[int, int]:
        """Pixel position of data point (x, y)."""
        fx = (x - self.x0) / (self.x1 - self.x0) if self.x1 > self.x0 else 0.5
        fy = (y - self.y0) / (self.y1 - self.y0) if self.y1 > self.y0 else 0.5
        return (round(self.left + fx * (self.right - self.left)),
                round(self.bottom - fy * (self.bottom - self.top)))


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.3g}"


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.42,
          color: Color = INK, thickness: int = 1, align: str = "left") -> None:
    (w, h), _ = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = org
    if align == "right":
        x -= w
    elif align == "center":
        x -= w // 2
    cv2.putText(img, text, (x, y), FONT, scale, color, thickness, cv2.LINE_AA)


def _frame(size: tuple[int, int], title: str, x_label: str, y_label: str,
           xr: tuple[float, float], yr: tuple[float, float]) -> tuple[np.ndarray, Axes]:
    """A white canvas with title, grid, ticks and axis labels; returns it and its axes."""
    width, height = size
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = MARGIN[0], width - MARGIN[1], MARGIN[2], height - MARGIN[3]
    if xr[1] <= xr[0]:
        xr = (xr[0] - 1.0, xr[1] + 1.0)
    xt = [x for x in nice_ticks(*xr) if xr[0] - 1e-9 <= x <= xr[1] + 1e-9]
    yt = nice_ticks(*yr)
    axes = Axes(xr[0], xr[1], yt[0], yt[-1], left, top, right, bottom)
    for y in yt:
        py = axes.px(axes.x0, y)[1]
        cv2.line(img, (left, py), (right, py), GRID, 1)
        _text(img, _label(y), (left - 6, py + 4), align="right")
    for x in xt:
        px = axes.px(x, axes.y0)[0]
        cv2.line(img, (px, top), (px, bottom), GRID, 1)
        _text(img, _label(x), (px, bottom + 16), align="center")
    cv2.rectangle(img, (left, top), (right, bottom), INK, 1)
    _text(img, title, (left, 22), scale=0.55, thickness=1)
    _text(img, x_label, ((left + right) // 2, height - 10), align="center")
    _text(img, y_label, (left, top - 8))
    return img, axes


def _legend(img: np.ndarray, items: Sequence[tuple[str, Color]]) -> None:
    """Coloured swatches and labels along the top right, right-aligned."""
    x = img.shape[1] - MARGIN[1]
    for label, color in reversed(items):
        (w, _), _ = cv2.getTextSize(label, FONT, 0.42, 1)
        x -= w
        _text(img, label, (x, 22))
        x -= 18
        cv2.rectangle(img, (x, 12), (x + 12, 24), color, -1)
        x -= 14


def line_chart(series: Sequence[Series], title: str, x_label: str, y_label: str,
               size: tuple[int, int] = (900, 340), y_range: tuple[float, float] | None = None
               ) -> np.ndarray:
    """Lines (and optional markers) of several series on shared axes."""
    return _plot(series, title, x_label, y_label, size, y_range)[0]


def _plot(series: Sequence[Series], title: str, x_label: str, y_label: str,
          size: tuple[int, int], y_range: tuple[float, float] | None,
          x_pad: float = 0.0) -> tuple[np.ndarray, Axes]:
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys if y is not None and math.isfinite(y)]
    xr = (min(xs), max(xs)) if xs else (0.0, 1.0)
    pad = (xr[1] - xr[0]) * x_pad
    xr = (xr[0] - pad, xr[1] + pad)
    yr = y_range or ((min(0.0, min(ys)), max(ys) * 1.05) if ys else (0.0, 1.0))
    img, axes = _frame(size, title, x_label, y_label, xr, yr)
    for s in series:
        run: list[tuple[int, int]] = []
        for x, y in [*zip(s.xs, s.ys, strict=True), (None, None)]:
            if y is None or x is None or not math.isfinite(y):
                if len(run) > 1:
                    cv2.polylines(img, [np.array(run, np.int32)], False, s.color, 2, cv2.LINE_AA)
                elif len(run) == 1 and not s.markers:
                    cv2.circle(img, run[0], 2, s.color, -1, cv2.LINE_AA)
                run = []
                continue
            run.append(axes.px(x, y))
            if s.markers:
                cv2.circle(img, run[-1], 4, s.color, -1, cv2.LINE_AA)
    _legend(img, [(s.label, s.color) for s in series])
    return img, axes


def stacked_chart(xs: Sequence[float], layers: Sequence[tuple[str, Sequence[float], Color]],
                  title: str, x_label: str, y_label: str,
                  size: tuple[int, int] = (900, 300)) -> np.ndarray:
    """Stacked bars, one per x, of shares that add up to at most 1 (drawn in percent)."""
    xr = (min(xs) - 0.5, max(xs) + 0.5) if xs else (0.0, 1.0)  # room for the end bars
    img, axes = _frame(size, title, x_label, y_label, xr, (0.0, 100.0))
    if xs:
        half = max(1, (axes.px(1.0, 0.0)[0] - axes.px(0.0, 0.0)[0]) // 2 - 1)
        base = [0.0] * len(xs)
        for _, values, color in layers:
            for i, (x, v) in enumerate(zip(xs, values, strict=True)):
                lo, hi = base[i], base[i] + 100.0 * v
                (px, py0), (_, py1) = axes.px(x, lo), axes.px(x, hi)
                if py1 < py0:
                    cv2.rectangle(img, (px - half, py1), (px + half, py0), color, -1)
                base[i] = hi
        cv2.rectangle(img, (axes.left, axes.top), (axes.right, axes.bottom), INK, 1)
    _legend(img, [(name, color) for name, _, color in layers])
    return img


def timing_chart(records: Sequence[dict], live: bool) -> np.ndarray:
    """Per-frame latency (live) or engine time and dense time (offline), in ms."""
    got = [r for r in records if r.get("received", True)]
    xs = [r["index"] for r in got]
    if live:  # every frame, so that the line breaks where frames were dropped
        series = [Series("latency (input to labels)", [r["index"] for r in records],
                         [r.get("latency_ms") for r in records], SERIES_COLORS[0])]
        dropped = [r["index"] for r in records if not r.get("received", True)]
        if dropped:
            series.append(Series("dropped frames", dropped, [0.0] * len(dropped),
                                 SERIES_COLORS[3], markers=True))
        title = "Latency per frame (live, through the node over DDS)"
    else:
        series = [Series("engine", xs, [r.get("time_ms") for r in got], SERIES_COLORS[0])]
        if any("dense_time_ms" in r for r in got):
            series.append(Series("dense", xs, [r.get("dense_time_ms") for r in got],
                                 SERIES_COLORS[1]))
        title = "Time per frame (offline, same frames)"
    return line_chart(series, title, "frame", "ms")


def path_mix_chart(records: Sequence[dict]) -> np.ndarray:
    """Per-frame FULL / LOW / REUSE shares, stacked."""
    got = [r for r in records if r.get("received", True)]
    layers = [(name, [r.get(key, 0.0) for r in got], color) for name, key, color in PATH_LAYERS]
    return stacked_chart([r["index"] for r in got], layers, "Path mix per frame", "frame",
                         "% of blocks")


def tradeoff_chart(rows: Sequence[dict], accuracy_key: str, accuracy_label: str,
                   reference: float | None) -> np.ndarray:
    """Speed ratio vs accuracy of every sweep value, with the dense network at (1, reference)."""
    pts = [(r["speed_ratio"], r.get(accuracy_key), str(r["value"])) for r in rows
           if r.get("speed_ratio") is not None and r.get(accuracy_key) is not None]
    series = [Series("sweep", [p[0] for p in pts], [p[1] for p in pts], SERIES_COLORS[0],
                     markers=True)]
    if reference is not None:
        series.append(Series("dense", [1.0], [reference], SERIES_COLORS[3], markers=True))
    ys = [p[1] for p in pts] + ([reference] if reference is not None else [])
    pad = max(1.0, (max(ys) - min(ys)) * 0.15) if ys else 1.0
    name = rows[0]["name"] if rows else "value"
    img, axes = _plot(series, f"Speed / accuracy trade-off of {name}",
                      "speed vs dense (x, higher is faster)", accuracy_label, (760, 460),
                      (min(ys) - pad, max(ys) + pad) if ys else None, x_pad=0.08)
    for x, y, label in pts:
        px, py = axes.px(x, y)
        text = f"{name}={label}"
        width = cv2.getTextSize(text, FONT, 0.42, 1)[0][0]
        left_of_point = px + 7 + width > axes.right - 2
        _text(img, text, (px - 7 if left_of_point else px + 7, py - 7),
              align="right" if left_of_point else "left")
    return img


def samples_sheet(samples: Sequence[tuple[EvalFrame, FrameOutcome]],
                  palette: Sequence[Sequence[int]], class_names: Sequence[str],
                  max_width: int = 1500) -> np.ndarray:
    """Rows of input | labels overlay | path map, captioned, with the class and path legend."""
    lut = palette_lut(palette)
    rows = []
    for frame, outcome in samples:
        row = side_by_side(frame.rgb, colorize(outcome.labels, lut), outcome.path_map)
        if row.shape[1] > max_width:
            row = cv2.resize(row, (max_width, round(row.shape[0] * max_width / row.shape[1])),
                             interpolation=cv2.INTER_AREA)
        scale = min(0.8, max(0.35, row.shape[0] / 500))
        put_caption(row, frame_caption(frame, outcome), (6, round(36 * scale)), scale)
        rows.append(row)
    width = max((r.shape[1] for r in rows), default=max_width)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    items = [(n, tuple(int(c) for c in palette[i])) for i, n in enumerate(class_names)
             if i < len(palette)]
    items += [(name, color) for name, _, color in PATH_LAYERS]
    return np.vstack([*rows, legend_strip(items, width)])


def legend_strip(items: Sequence[tuple[str, Color]], width: int) -> np.ndarray:
    """Swatches with names, wrapped over as many lines as needed."""
    lines: list[list[tuple[str, Color, int]]] = [[]]
    x = 8
    for label, color in items:
        w = cv2.getTextSize(label, FONT, 0.45, 1)[0][0] + 30
        if x + w > width and lines[-1]:
            lines.append([])
            x = 8
        lines[-1].append((label, color, x))
        x += w
    img = np.full((22 * len(lines) + 6, width, 3), 255, np.uint8)
    for row, line in enumerate(lines):
        y = 18 + 22 * row
        for label, color, x in line:
            cv2.rectangle(img, (x, y - 11), (x + 14, y + 1), color, -1)
            cv2.rectangle(img, (x, y - 11), (x + 14, y + 1), INK, 1)
            _text(img, label, (x + 19, y), scale=0.45)
    return img


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an RGB image as PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return path
