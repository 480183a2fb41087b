"""What ``seg_accel_eval`` evaluates: timed frames, with ground-truth labels when there are some.

One spec string names the input:

* a rosbag2 (bag folder, ``.mcap`` or ``.db3``): its image topic's frames, header stamps kept;
* a video file: frames stamped ``i / fps`` seconds from the start;
* an image folder: stamps from CamVid-style frame numbers in the file names (else ``fps``);
  labels from ``labels_dir``, or from a CamVid-layout sibling ``<folder>annot`` when it exists;
* ``camvid:SPLIT[/SEQUENCE[:FIRST-LAST]]`` (``camvid:val/0016E5:7959-8159``) or
  ``camvid:temporal`` (that 15 Hz labelled segment): CamVid frames with their labels;
* ``generated``: the synthetic street scene of :mod:`seg_accel_ros.frame_sources` (no labels).

Stamps are deterministic (no wall clock), so offline evaluations are repeatable.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_accel_ros import bags
from seg_accel_ros.datasets.camvid import TEMPORAL_SEGMENT, CamVid, read_labels, read_rgb
from seg_accel_ros.frame_sources import (
    DEFAULT_RATE,
    folder_plan,
    generated_frames,
    numbered_times,
    video_fps,
    video_frames,
)
from seg_accel_ros.models.classes import CAMVID_CLASSES, CAMVID_IGNORE_INDEX

NS = 1_000_000_000
GENERATED_FRAMES = 100  # frames of 'generated' when no maximum is given


@dataclass(frozen=True)
class EvalFrame:
    """One frame to evaluate: HxWx3 uint8 RGB, HxW uint8 labels or None, and its times."""

    index: int
    stamp_ns: int  # header stamp (what the node copies to its outputs)
    time_ns: int  # bag time; equals the stamp for sources that are not bags
    rgb: np.ndarray
    labels: np.ndarray | None = None
    name: str = ""


@dataclass
class EvalSource:
    """A replayable stream of :class:`EvalFrame` and what is known about it."""

    kind: str  # bag | video | folder | camvid | generated
    description: str
    open_frames: Callable[[], Iterator[EvalFrame]]
    length: int | None  # frames, when known in advance
    rate_hz: float  # typical frame rate
    has_labels: bool
    timing: str  # where the stamps come from
    class_names: tuple[str, ...] = CAMVID_CLASSES
    ignore_index: int | None = CAMVID_IGNORE_INDEX
    frame_id: str = "camera"
    topic: str = ""  # the bag's image topic
    msgtype: str = bags.IMAGE_TYPE  # the bag topic's message type
    bag_path: Path | None = None  # the bag whose ``topic`` messages are the frames, unresized

    def frames(self, max_frames: int | None = None) -> Iterator[EvalFrame]:
        """The frames in order, at most ``max_frames`` of them."""
        return itertools.islice(self.open_frames(), max_frames)

    def expected_frames(self, max_frames: int | None = None) -> int | None:
        """How many frames :meth:`frames` should give (None when unknown)."""
        if self.length is None:
            return max_frames
        return self.length if max_frames is None else min(self.length, max_frames)

    def frame_pixels(self) -> int:
        """Pixels of the first frame (0 when there is none): what picks a preset."""
        first = next(self.frames(1), None)
        return 0 if first is None else first.rgb.shape[0] * first.rgb.shape[1]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description for reports."""
        return {"kind": self.kind, "description": self.description, "frames": self.length,
                "rate_hz": self.rate_hz, "labels": self.has_labels, "timing": self.timing,
                "topic": self.topic or None, "frame_id": self.frame_id}


def _fit(rgb: np.ndarray, labels: np.ndarray | None, size: tuple[int, int] | None
         ) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize a frame (area) and its labels (nearest) to ``size`` = (width, height)."""
    if size is None or (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb, labels
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if labels is not None:
        labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    return rgb, labels


def open_eval_source(spec: str, *, size: tuple[int, int] | None = None, fps: float | None = None,
                     topic: str | None = None, labels_dir: str | Path | None = None,
                     camvid_root: str | Path | None = None,
                     generated_count: int | None = None) -> EvalSource:
    """The source a spec names (see the module docstring); FileNotFoundError / ValueError.

    ``generated_count``: frames of 'generated' (default 100).
    """
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if spec.startswith("camvid:") or spec == "generated":
        path, kind = None, spec.partition(":")[0]
    else:
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(f"no bag, video file or image folder at {spec}")
        kind = "bag" if is_bag(path) else "folder" if path.is_dir() else "video"
    _check_options(kind, fps, topic, labels_dir)
    if kind == "camvid":
        return camvid_source(spec[len("camvid:"):], camvid_root, size)
    if kind == "generated":
        return generated_source(size or (640, 360), fps or DEFAULT_RATE,
                                generated_count or GENERATED_FRAMES)
    assert path is not None
    if kind == "bag":
        return bag_source(path, topic, size)
    if kind == "folder":
        return folder_source(path, labels_dir, fps, size)
    return video_source(path, fps, size)


def _check_options(kind: str, fps: float | None, topic: str | None,
                   labels_dir: str | Path | None) -> None:
    """Refuse an option this kind of source would ignore (ValueError naming why)."""
    if fps is not None and kind in ("camvid", "bag"):
        raise ValueError("a frame rate applies to a video, an image folder or generated "
                         f"frames; a {kind} source keeps the stamps it has")
    if topic and kind != "bag":
        raise ValueError(f"a topic applies to a bag, not to a {kind} source")
    if labels_dir and kind != "folder":
        raise ValueError(f"a labels folder applies to an image folder, not to a {kind} source")


def is_bag(path: Path) -> bool:
    """Whether ``path`` looks like a rosbag2 (folder with metadata or storage files, or a file)."""
    if path.is_file():
        return path.suffix in (".mcap", ".db3")
    if (path / "metadata.yaml").is_file():
        return True
    return any(p.suffix in (".mcap", ".db3") for p in path.iterdir())


def bag_source(path: Path, topic: str | None, size: tuple[int, int] | None) -> EvalSource:
    """A bag's image topic (``topic``, or its only / first image topic)."""
    with bags.BagReader(path) as bag:
        chosen = bag.select_topics([topic] if topic else None)[0]
        frame_id, native = "camera", None
        for frame in bag.frames([chosen.name]):
            frame_id = frame.frame_id or frame_id
            native = (frame.rgb.shape[1], frame.rgb.shape[0])
            break
        duration = bag.duration_ns / NS
    rate = (chosen.count - 1) / duration if chosen.count > 1 and duration > 0 else 0.0

    def frames() -> Iterator[EvalFrame]:
        with bags.BagReader(path) as reader:
            for i, f in enumerate(reader.frames([chosen.name])):
                rgb, _ = _fit(f.rgb, None, size)
                yield EvalFrame(i, f.stamp_ns, f.time_ns, rgb, None, f"{chosen.name}#{i}")

    return EvalSource("bag", f"{path} ({chosen.name})", frames, chosen.count, rate, False,
                      "header stamps of the bag", frame_id=frame_id, topic=chosen.name,
                      msgtype=chosen.msgtype,
                      bag_path=path if size is None or tuple(size) == native else None)


def video_source(path: Path, fps: float | None, size: tuple[int, int] | None) -> EvalSource:
    """A video file, stamped ``i / fps`` seconds (the video's own rate unless ``fps``)."""
    own = video_fps(path)
    rate = fps or own or DEFAULT_RATE
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot decode {path} as a video")
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    cap.release()

    def frames() -> Iterator[EvalFrame]:
        for i, rgb in enumerate(video_frames(path, size)):
            stamp = round(i * NS / rate)
            yield EvalFrame(i, stamp, stamp, rgb, None, f"{path.name}#{i}")

    timing = f"{rate:g} Hz from the start of the video" + (
        " (the video's frame rate)" if not fps and own else "")
    return EvalSource("video", str(path), frames, count, rate, False, timing)


def _labels_folder(folder: Path, labels_dir: str | Path | None) -> Path | None:
    if labels_dir is not None:
        labels = Path(labels_dir)
        if not labels.is_dir():
            raise FileNotFoundError(f"no labels folder at {labels}")
        return labels
    sibling = folder.parent / f"{folder.name}annot"  # CamVid layout: test/ and testannot/
    return sibling if sibling.is_dir() else None


def folder_source(folder: Path, labels_dir: str | Path | None, fps: float | None,
                  size: tuple[int, int] | None) -> EvalSource:
    """Images of a folder in play order; labels of the same file name when a labels folder
    is given or found beside it."""
    files, times, origin = folder_plan(folder, fps, 30.0, 2.0)
    labels = _labels_folder(folder, labels_dir)

    def frames() -> Iterator[EvalFrame]:
        for i, (file, seconds) in enumerate(zip(files, times, strict=True)):
            label_file = labels / file.name if labels is not None else None
            gt = read_labels(label_file) if label_file is not None and label_file.is_file() \
                else None
            rgb, gt = _fit(read_rgb(file), gt, size)
            stamp = round(seconds * NS)
            yield EvalFrame(i, stamp, stamp, rgb, gt, file.name)

    return EvalSource("folder", str(folder) + (f" (labels: {labels})" if labels else ""),
                      frames, len(files), _typical_rate(times), labels is not None, origin)


def camvid_source(selector: str, root: str | Path | None, size: tuple[int, int] | None
                  ) -> EvalSource:
    """``SPLIT[/SEQUENCE[:FIRST-LAST]]`` or ``temporal`` of CamVid, with labels."""
    if selector == "temporal":
        dataset = CamVid.temporal_segment(root)
        seq, first, last = TEMPORAL_SEGMENT
        selector = f"val/{seq}:{first}-{last}"
    else:
        split, _, rest = selector.partition("/")
        sequence, _, span = rest.partition(":")
        frame_range = None
        if span:
            try:
                a, b = (int(x) for x in span.split("-"))
            except ValueError:
                raise ValueError(f"CamVid frame range must be FIRST-LAST, got {span!r}") from None
            frame_range = (a, b)
        dataset = CamVid(split, root, sequence=sequence or None, frames=frame_range)
    if len(dataset) == 0:
        raise FileNotFoundError(f"no CamVid frames match {selector!r} under {dataset.root}")
    times = numbered_times([(s.sequence, s.frame) for s in dataset.samples])

    def frames() -> Iterator[EvalFrame]:
        for i, (sample, seconds) in enumerate(zip(dataset.samples, times, strict=True)):
            rgb, gt = _fit(read_rgb(sample.image_path), read_labels(sample.label_path), size)
            stamp = round(seconds * NS)
            yield EvalFrame(i, stamp, stamp, rgb, gt, sample.image_path.name)

    return EvalSource("camvid", f"camvid/{selector}", frames, len(dataset), _typical_rate(times),
                      True, "frame numbers in the file names at 30 fps")


def generated_source(size: tuple[int, int], fps: float, count: int = GENERATED_FRAMES
                     ) -> EvalSource:
    """``count`` frames of the synthetic moving street scene (no labels)."""

    def frames() -> Iterator[EvalFrame]:
        for i, rgb in enumerate(generated_frames(size, count=count)):
            stamp = round(i * NS / fps)
            yield EvalFrame(i, stamp, stamp, rgb, None, f"generated#{i}")

    return EvalSource("generated", f"generated {size[0]}x{size[1]}", frames, count, fps, False,
                      f"{fps:g} Hz")


def _typical_rate(times: list[float]) -> float:
    steps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    return 1.0 / steps[len(steps) // 2] if steps else 0.0
