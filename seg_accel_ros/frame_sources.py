"""Frame sources for tools, tests and the demo: a video file, an image folder, or a generated
street-like scene (no ROS)."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")
DEFAULT_RATE = 30.0  # frames per second when nothing says otherwise
_NUMBERED = re.compile(r"(?P<sequence>.+?)_f?(?P<number>[0-9]+)")


def _fit(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def video_frames(path: str | Path, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """RGB frames of a video file, optionally resized to ``size`` = (width, height)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield _fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)
    finally:
        cap.release()


def video_fps(path: str | Path) -> float:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return float(fps) if fps and fps > 0 else 0.0


def folder_frames(path: str | Path, size: tuple[int, int] | None = None
                  ) -> Iterator[np.ndarray]:
    """RGB frames of the images in a folder, in file-name order."""
    files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images in {path}")
    for file in files:
        bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot decode image {file}")
        yield _fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)


def numbered_order(names: Sequence[str]) -> list[tuple[str, int]] | None:
    """(sequence, frame number) per file name (stem), or None when not all names carry one.

    Sequences keep the order of their first file; frames in a sequence must not repeat.
    """
    parsed: list[tuple[str, int]] = []
    for name in names:
        match = _NUMBERED.fullmatch(Path(name).stem)
        if match is None:
            return None
        parsed.append((match["sequence"], int(match["number"])))
    if len(set(parsed)) != len(parsed):
        return None
    return parsed


def numbered_times(frames: Sequence[tuple[str, int]], name_fps: float = 30.0,
                   max_gap: float = 2.0) -> list[float]:
    """Seconds from the first frame for (sequence, number) frames sorted per sequence.

    Within a sequence the time follows the numbers at ``name_fps``; across a new sequence, or a
    jump longer than ``max_gap`` seconds, time advances by the typical (median) step.
    """
    gaps = [(b[1] - a[1]) / name_fps for a, b in zip(frames, frames[1:], strict=False)
            if a[0] == b[0] and 0 < (b[1] - a[1]) / name_fps <= max_gap]
    step = statistics.median(gaps) if gaps else 1.0 / name_fps
    times = [0.0]
    for prev, cur in zip(frames, frames[1:], strict=False):
        gap = (cur[1] - prev[1]) / name_fps
        times.append(times[-1] + (gap if prev[0] == cur[0] and 0 < gap <= max_gap else step))
    return times


def folder_plan(folder: Path, rate: float | None, name_fps: float, max_gap: float
                ) -> tuple[list[Path], list[float], str]:
    """Image files in play order, their times (s from the first) and where the times came from."""
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    numbered = None if rate is not None else numbered_order([f.name for f in files])
    if numbered is None:
        hz = rate or DEFAULT_RATE
        return files, [i / hz for i in range(len(files))], f"{hz:g} Hz"
    first_seen = {seq: i for i, (seq, _) in reversed(list(enumerate(numbered)))}
    order = sorted(range(len(files)), key=lambda i: (first_seen[numbered[i][0]], numbered[i][1]))
    frames = [numbered[i] for i in order]
    times = numbered_times(frames, name_fps, max_gap)
    return [files[i] for i in order], times, f"frame numbers in the file names at {name_fps:g} fps"


def generated_frames(size: tuple[int, int] = (640, 360), count: int | None = None,
                     speed: int = 4) -> Iterator[np.ndarray]:
    """A synthetic road scene moving ``speed`` px per frame: sky, buildings, road, markings."""
    width, height = size
    world = _render_world(width * 4, height)
    for i in range(count if count is not None else 10**12):
        x0 = (i * speed) % (world.shape[1] - width)
        yield np.ascontiguousarray(world[:, x0:x0 + width])


def _render_world(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    world = np.empty((height, width, 3), np.uint8)
    horizon = height * 2 // 5
    world[:horizon] = (135, 170, 215)
    world[horizon:] = (90, 90, 95)
    x = 0
    while x < width:  # buildings of random width and height along the horizon
        w = int(rng.integers(width // 40 + 8, width // 12 + 16))
        top = int(rng.integers(height // 20, horizon))
        color = rng.integers(60, 200, 3)
        world[top:horizon + height // 10, x:x + w] = color
        world[top + 4:horizon, x + 3:x + w - 3:9] = color // 2  # windows
        x += w
    lane_y = horizon + (height - horizon) * 2 // 3
    for x in range(0, width, 80):
        world[lane_y:lane_y + max(2, height // 90), x:x + 40] = 235
    world[horizon + height // 10:horizon + height // 10 + 6] = (150, 150, 150)  # kerb
    noise = rng.integers(-6, 7, world.shape)
    return np.clip(world.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def open_source(spec: str, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Frames from a video file, an image folder, or 'generated'."""
    if spec in ("", "generated"):
        return generated_frames(size or (640, 360))
    path = Path(spec)
    if path.is_dir():
        return folder_frames(path, size)
    if path.is_file():
        return video_frames(path, size)
    raise FileNotFoundError(f"no video file or image folder at {spec}")
