"""Cases shared by the image codec tests: the encodings, random and smooth images, valid
messages and compressed streams."""

from __future__ import annotations

import dataclasses
import sys
from types import SimpleNamespace

import cv2
import numpy as np
from hypothesis import HealthCheck, settings

from seg_accel_ros.image_codec import (
    CompressedImageFields,
    ImageFields,
    encode_image,
    encoding_info,
    to_rgb8,
)

NAMED = [
    "rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "rgb16", "bgr16", "rgba16", "bgra16",
    "yuv422", "uyvy", "yuv422_yuy2", "yuyv",
    "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
    "bayer_rggb16", "bayer_bggr16", "bayer_gbrg16", "bayer_grbg16",
]
TYPES = [
    "8UC1", "8UC2", "8UC3", "8UC4", "8SC1", "16UC1", "16UC3", "16SC1", "32SC1", "32FC1",
    "32FC3", "64FC1", "16U", "32F",
]
ALL = NAMED + TYPES
LITTLE = sys.byteorder == "little"

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def as_msg(fields: ImageFields | CompressedImageFields) -> SimpleNamespace:
    """A plain object with the message fields (what rosbags / rclpy messages look like)."""
    return SimpleNamespace(**dataclasses.asdict(fields))


def sample(encoding: str, height: int = 5, width: int = 7, seed: int = 0) -> np.ndarray:
    """A random passthrough-shaped array for ``encoding``."""
    info = encoding_info(encoding)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    rng = np.random.default_rng(seed)
    if info.dtype.kind == "f":
        return rng.standard_normal(shape).astype(info.dtype)
    limits = np.iinfo(info.dtype)
    return rng.integers(limits.min, limits.max, shape, dtype=info.dtype, endpoint=True)


def smooth_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    """A smooth colour image that JPEG keeps close to the original."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1),
                     np.full_like(x, 90)], axis=-1).astype(np.uint8)


def good_msg(**changes: object) -> SimpleNamespace:
    fields = dataclasses.asdict(encode_image(sample("rgb8", 3, 4), "rgb8"))
    fields.update(changes)
    return SimpleNamespace(**fields)


def rgb8_of(image: np.ndarray, encoding: str, step: int | None = None) -> np.ndarray:
    out = to_rgb8(as_msg(encode_image(image, encoding, step=step)))
    assert out.dtype == np.uint8 and out.shape == image.shape[:2] + (3,)
    return out


def jpeg_bytes(progressive: bool = False) -> bytes:
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else []
    return cv2.imencode(".jpg", smooth_rgb()[..., ::-1], params)[1].tobytes()


def png_bytes() -> bytes:
    return cv2.imencode(".png", smooth_rgb())[1].tobytes()

