"""Convert a video file, an image folder (CamVid included) or generated frames to a rosbag2.

    python -m seg_accel_ros.tools.to_bag SOURCE OUT_BAG [--topic /camera/image_raw]
        [--encoding rgb8|bgr8|mono8|mono16|rgba8|bgra8|jpeg|png] [--rate HZ]
        [--storage mcap|sqlite3] [--frame-id camera] [--start-time EPOCH_S] [--count N]

Every frame becomes one sensor_msgs/Image (raw encodings) or sensor_msgs/CompressedImage
(jpeg / png, on ``<topic>/compressed`` as image_transport names it) whose header stamp equals
its bag time. Frame times come from, in this order: ``--rate``; the frame numbers in the file
names of an image folder (CamVid's ``0016E5_07959.png`` / ``Seq05VD_f00030.png``: numbers of
frames of a ``--name-fps`` video, so CamVid's 1 Hz labelled frames stay 1 s apart and its
15 Hz validation segment 1/15 s); the video's frame rate; 30 Hz.
"""

from __future__ import annotations

import argparse
import decimal
import itertools
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from seg_accel_ros import bags
from seg_accel_ros.frame_sources import (  # noqa: F401 - numbered_* stay importable from here
    DEFAULT_RATE,
    folder_plan,
    generated_frames,
    numbered_order,
    numbered_times,
    video_fps,
    video_frames,
)


def _epoch_seconds(text: str) -> decimal.Decimal:
    """Seconds since the epoch, exactly as written (a float would round the nanoseconds)."""
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be in 0..2**31 seconds, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of the converter."""
    ap = argparse.ArgumentParser(prog="python -m seg_accel_ros.tools.to_bag",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("source", help="video file, image folder, or 'generated'")
    ap.add_argument("out", help="bag folder to create (must not exist)")
    ap.add_argument("--topic", default="/camera/image_raw",
                    help="image topic; jpeg/png go to TOPIC/compressed")
    ap.add_argument("--encoding", default="rgb8", choices=bags.FRAME_ENCODINGS)
    ap.add_argument("--rate", type=float, default=None,
                    help="frames per second (default: from file names, the video, or 30)")
    ap.add_argument("--name-fps", type=float, default=30.0,
                    help="frame rate of the video whose frame numbers the file names carry")
    ap.add_argument("--max-gap", type=float, default=2.0,
                    help="seconds; a longer jump in the file-name numbers (a cut) or a new "
                         "sequence continues after one typical frame step")
    ap.add_argument("--storage", default="mcap", choices=bags.STORAGES)
    ap.add_argument("--frame-id", default="camera")
    ap.add_argument("--start-time", type=_epoch_seconds, default=None,
                    help="bag time of the first frame, seconds since the epoch (default: now)")
    ap.add_argument("--count", type=int, default=0,
                    help="frames to convert (0: all; 'generated' makes 100 by default)")
    ap.add_argument("--width", type=int, default=0, help="resize to this width (0: keep)")
    ap.add_argument("--height", type=int, default=0, help="resize to this height (0: keep)")
    ap.add_argument("--jpeg-quality", type=int, default=None,
                    help="with --encoding jpeg: 0..100 (default 95)")
    args = ap.parse_args(argv)
    if args.rate is not None and not 0.0 < args.rate <= 10000.0:
        ap.error("--rate must be in (0, 10000] frames per second")
    if not 0.0 < args.name_fps <= 10000.0 or not args.max_gap > 0.0:
        ap.error("--name-fps must be in (0, 10000] and --max-gap positive")
    if args.count < 0 or args.width < 0 or args.height < 0 or (args.width > 0) != (args.height > 0):
        ap.error("--count must be >= 0; --width and --height positive and given together")
    if args.jpeg_quality is not None and args.encoding != "jpeg":
        ap.error(f"--jpeg-quality is for --encoding jpeg, not {args.encoding}")
    if args.jpeg_quality is None:
        args.jpeg_quality = 95
    if not 0 <= args.jpeg_quality <= 100:
        ap.error("--jpeg-quality must be in 0..100")
    return args


def _read_images(files: Sequence[Path], size: tuple[int, int] | None) -> Iterator[np.ndarray]:
    for file in files:
        bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot decode image {file}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        yield rgb if size is None else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def plan_source(args: argparse.Namespace) -> tuple[Iterator[np.ndarray], Iterator[float], str]:
    """Frames, their times in seconds from the first, and where the times came from."""
    size = (args.width, args.height) if args.width else None
    if args.source == "generated":
        hz = args.rate or DEFAULT_RATE
        frames = generated_frames(size or (640, 360), count=args.count or 100)
        return frames, (i / hz for i in itertools.count()), f"{hz:g} Hz"
    path = Path(args.source)
    if path.is_dir():
        files, times, origin = folder_plan(path, args.rate, args.name_fps, args.max_gap)
        return _read_images(files, size), iter(times), origin
    if path.is_file():
        fps = video_fps(path)
        hz = args.rate or fps or DEFAULT_RATE
        origin = f"{hz:g} Hz" + (" (the video's frame rate)" if args.rate is None and fps else "")
        return video_frames(path, size), (i / hz for i in itertools.count()), origin
    raise FileNotFoundError(f"no video file or image folder at {args.source}")


def convert(args: argparse.Namespace) -> dict[str, object]:
    """Write the bag; returns what was written (frames, topic, duration, ...)."""
    frames, times, origin = plan_source(args)
    start_ns = time.time_ns() if args.start_time is None else int(args.start_time * 10**9)
    topic = bags.topic_for_encoding(args.topic, args.encoding)
    count, first, last, shape = 0, None, None, None
    with bags.BagWriter(args.out, args.storage) as bag:
        for rgb, seconds in zip(frames, times, strict=False):
            if args.count and count >= args.count:
                break
            stamp = start_ns + round(seconds * 1e9)
            bag.write_frame(topic, stamp, rgb, args.encoding, frame_id=args.frame_id,
                            jpeg_quality=args.jpeg_quality)
            first = stamp if first is None else first
            last, shape, count = stamp, rgb.shape, count + 1
        if count == 0:
            raise bags.BagError(f"{args.source} gave no frames")
    duration = (last - first) / 1e9 if count else 0.0
    return {"frames": count, "topic": topic, "duration_s": duration,
            "rate_hz": (count - 1) / duration if duration > 0 else 0.0, "times": origin,
            "size": f"{shape[1]}x{shape[0]}" if shape else "", "start_ns": first}


def main(argv: Sequence[str] | None = None) -> int:
    """Convert SOURCE to the bag OUT_BAG and print what was written."""
    args = parse_args(argv)
    try:
        info = convert(args)
    except (bags.BagError, FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"to_bag: error: {exc}") from None
    except KeyboardInterrupt:
        kept = f"; the frames written so far are in {args.out}" if Path(args.out).exists() else ""
        print(f"to_bag: interrupted{kept}", file=sys.stderr)
        return 130
    print(f"wrote {info['frames']} frames ({info['size']}, {args.encoding}) to {args.out} "
          f"[{args.storage}] on {info['topic']}, frame_id {args.frame_id!r}: "
          f"{info['duration_s']:.3f} s at {info['rate_hz']:.3f} Hz (times from {info['times']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
