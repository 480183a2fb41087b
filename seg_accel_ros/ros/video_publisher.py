"""Publishes a video file, image folder or generated scene as a camera topic.

    python -m seg_accel_ros.ros.video_publisher --source clip.mp4 --rate 30 --encoding bgr8

Stamps are the publish time; each published stamp is printed as one line ("sec.nanosec"), so
tests and benchmarks can match outputs to inputs.
"""

from __future__ import annotations

import argparse
import itertools
import time

import cv2
import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from seg_accel_ros import image_codec
from seg_accel_ros.frame_sources import open_source
from seg_accel_ros.ros.image_cdr import agrees_with_rclpy, serialize_image

COMPRESSED_FORMATS = ("jpeg", "png")


_FROM_RGB = {"bgr8": cv2.COLOR_RGB2BGR, "mono8": cv2.COLOR_RGB2GRAY, "rgba8": cv2.COLOR_RGB2RGBA,
             "bgra8": cv2.COLOR_RGB2BGRA}


def from_rgb8(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """Convert an RGB frame to the layout of ``encoding`` (the camera drivers' formats)."""
    if encoding == "rgb8":
        return rgb
    if encoding in _FROM_RGB:
        return cv2.cvtColor(rgb, _FROM_RGB[encoding])
    if encoding in ("mono16", "16UC1"):
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    raise ValueError(f"the publisher cannot produce encoding {encoding!r}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="generated", help="video file, image folder, generated")
    ap.add_argument("--topic", default="image")
    ap.add_argument("--rate", type=float, default=10.0, help="frames per second")
    ap.add_argument("--count", type=int, default=0, help="frames to publish; 0: until stopped")
    ap.add_argument("--loop", action="store_true", help="restart the source at its end")
    ap.add_argument("--width", type=int, default=0, help="resize (0: source size)")
    ap.add_argument("--height", type=int, default=0)
    ap.add_argument("--encoding", default="rgb8", help="rgb8, bgr8, mono8 ... or jpeg / png")
    ap.add_argument("--frame-id", default="camera")
    ap.add_argument("--reliable", action="store_true", help="reliable QoS (default best effort)")
    ap.add_argument("--delay", type=float, default=1.0, help="seconds before the first frame")
    ap.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                    help="wait up to S seconds for --min-subscribers before the first frame")
    ap.add_argument("--min-subscribers", type=int, default=1)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    size = (args.width, args.height) if args.width and args.height else None
    frames = open_source(args.source, size)
    if args.loop:
        first = list(itertools.islice(frames, 100000))
        frames = itertools.cycle(first)
    rclpy.init()
    node = rclpy.create_node("video_publisher")
    compressed = args.encoding in COMPRESSED_FORMATS
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE if args.reliable
                     else ReliabilityPolicy.BEST_EFFORT)
    topic = args.topic + ("/compressed" if compressed else "")
    pub = node.create_publisher(CompressedImage if compressed else Image, topic, qos)
    serialized = agrees_with_rclpy()
    deadline = time.monotonic() + args.wait_for_subscribers
    while pub.get_subscription_count() < args.min_subscribers and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(args.delay)
    period, start = 1.0 / args.rate, time.monotonic()
    try:
        for i, rgb in enumerate(frames):
            if args.count and i >= args.count:
                break
            stamp = node.get_clock().now().to_msg()
            if compressed:
                msg = CompressedImage()
                image_codec.fill_image_msg(
                    msg, image_codec.encode_compressed(rgb, "rgb8", args.encoding))
                msg.header.stamp, msg.header.frame_id = stamp, args.frame_id
            elif serialized:  # one copy of the pixels instead of three
                msg = serialize_image(stamp.sec, stamp.nanosec, args.frame_id,
                                      from_rgb8(rgb, args.encoding), args.encoding)
            else:
                msg = Image()
                image_codec.fill_image_msg(msg, image_codec.encode_image(
                    from_rgb8(rgb, args.encoding), args.encoding))
                msg.header.stamp, msg.header.frame_id = stamp, args.frame_id
            pub.publish(msg)
            print(f"{stamp.sec}.{stamp.nanosec:09d}", flush=True)
            time.sleep(max(0.0, start + (i + 1) * period - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
