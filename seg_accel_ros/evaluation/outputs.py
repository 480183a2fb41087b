"""What an evaluation leaves besides numbers: an overlay video, a labels bag, sample frames.

Each is a sink that takes (frame, outcome) pairs of the primary run as they are produced, so
nothing but the few sample frames is kept in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from seg_accel_ros import bags
from seg_accel_ros.evaluation.scoring import FrameOutcome, path_mix_from_map
from seg_accel_ros.evaluation.sources import EvalFrame
from seg_accel_ros.visualization import colorize, palette_lut, put_caption, side_by_side

VIDEO_FOURCC = "mp4v"  # what OpenCV's bundled FFmpeg writes to .mp4 (no H.264 encoder there)
LABELS_NAMESPACE = "/seg_accel_node"  # the node's output topics: ~/labels etc.


def frame_caption(frame: EvalFrame, outcome: FrameOutcome) -> str:
    """'frame 12  83 ms  FULL 25% LOW 75% REUSE 0%' for a video frame or sample."""
    mix = outcome.path_mix or (path_mix_from_map(outcome.path_map)
                               if outcome.path_map is not None else {})
    ms = outcome.latency_ms if outcome.latency_ms is not None else outcome.time_ms
    timing = f"  {ms:.0f} ms" if ms is not None else ""
    shares = "  ".join(f"{p.upper()} {100 * mix.get(p, 0.0):.0f}%" for p in ("full", "low",
                                                                              "reuse"))
    return f"frame {frame.index}{timing}  {shares}"


class OverlayVideo:
    """An mp4 of input | labels overlay | path map, with a caption per frame (at most
    ``max_width`` wide; every frame at the first frame's size)."""

    def __init__(self, path: str | Path, fps: float, palette: Sequence[Sequence[int]],
                 max_width: int = 1920) -> None:
        self.path = Path(path)
        self.max_width = max_width  # three 720p panels side by side are scaled to this
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = min(60.0, max(1.0, fps))
        self.lut = palette_lut(palette)
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def add(self, frame: EvalFrame, outcome: FrameOutcome) -> None:
        """Append one frame (resized to the first frame's size when sizes change)."""
        panel = side_by_side(frame.rgb, colorize(outcome.labels, self.lut), outcome.path_map)
        if self.size is None:
            width = min(panel.shape[1], self.max_width) // 2 * 2  # even sizes for the codec
            height = round(panel.shape[0] * width / panel.shape[1]) // 2 * 2
            self.size = (width, height)
        if (panel.shape[1], panel.shape[0]) != self.size:
            panel = cv2.resize(panel, self.size, interpolation=cv2.INTER_AREA)
        scale = min(0.8, max(0.35, panel.shape[0] / 500))
        put_caption(panel, frame_caption(frame, outcome), (6, round(36 * scale)), scale)
        if self._writer is None:
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*VIDEO_FOURCC),
                                           self.fps, self.size)
            if not self._writer.isOpened():
                raise OSError(f"OpenCV cannot write {VIDEO_FOURCC} video to {self.path}")
        self._writer.write(cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class LabelsBag:
    """A rosbag2 of the outputs as the node publishes them, stamped like the input frames:
    ``<ns>/labels`` (mono8), ``<ns>/labels_color`` (rgb8), ``<ns>/path_map`` (mono8)."""

    def __init__(self, path: str | Path, palette: Sequence[Sequence[int]], *,
                 frame_id: str = "camera", storage: str = "mcap",
                 namespace: str = LABELS_NAMESPACE) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frame_id = frame_id
        self.lut = palette_lut(palette)
        self.topics = {name: f"{namespace}/{name}" for name in ("labels", "labels_color",
                                                                 "path_map")}
        self._bag = bags.BagWriter(self.path, storage)

    def add(self, frame: EvalFrame, outcome: FrameOutcome) -> None:
        """Write the three outputs of one frame at the input's bag time and header stamp."""
        write = self._bag.write_image
        stamp = {"stamp_ns": frame.stamp_ns, "frame_id": self.frame_id}
        write(self.topics["labels"], frame.time_ns, outcome.labels, "mono8", **stamp)
        write(self.topics["labels_color"], frame.time_ns, colorize(outcome.labels, self.lut),
              "rgb8", **stamp)
        if outcome.path_map is not None:
            write(self.topics["path_map"], frame.time_ns, outcome.path_map, "mono8", **stamp)

    @property
    def counts(self) -> dict[str, int]:
        """Messages written per topic."""
        return dict(self._bag.counts)

    def close(self) -> None:
        """Finish the bag (metadata.yaml)."""
        self._bag.close()


def sample_indices(total: int | None, count: int = 3) -> list[int]:
    """Evenly spread frame indices (first, middle, last for 3); first frames if total unknown."""
    if not total:
        return list(range(count))
    if total <= count:
        return list(range(total))
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


class SampleFrames:
    """Keeps the frames nearest to chosen indices (the first at or after each), for pictures."""

    def __init__(self, indices: Sequence[int]) -> None:
        self.targets = sorted(indices)
        self.samples: list[tuple[EvalFrame, FrameOutcome]] = []

    def add(self, frame: EvalFrame, outcome: FrameOutcome) -> None:
        """Keep this frame if it is the next one wanted."""
        if len(self.samples) < len(self.targets) and frame.index >= self.targets[
                len(self.samples)]:
            self.samples.append((_copy_frame(frame), _copy_outcome(outcome)))

    def close(self) -> None:
        """Nothing to finish."""


def _copy_frame(frame: EvalFrame) -> EvalFrame:
    labels = None if frame.labels is None else np.array(frame.labels)
    return EvalFrame(frame.index, frame.stamp_ns, frame.time_ns, np.array(frame.rgb), labels,
                     frame.name)


def _copy_outcome(outcome: FrameOutcome) -> FrameOutcome:
    path_map = None if outcome.path_map is None else np.array(outcome.path_map)
    return FrameOutcome(np.array(outcome.labels), path_map, dict(outcome.path_mix),
                        outcome.time_ms, outcome.latency_ms)
