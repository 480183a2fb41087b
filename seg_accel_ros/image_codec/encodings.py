"""Image encoding names: what each means (element type, channels, colour kind)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import cv2
import numpy as np


class ImageCodecError(ValueError):
    """An image message, array or compressed stream that cannot be converted; says why."""


@dataclass(frozen=True)
class EncodingInfo:
    """What an encoding name means: element dtype (native order), channels, and colour kind."""

    name: str
    dtype: np.dtype
    channels: int
    kind: str  # mono, rgb, bgr, rgba, bgra, uyvy, yuyv, bayer_rggb/bggr/gbrg/grbg, type

    @property
    def pixel_bytes(self) -> int:
        """Bytes per pixel (all channels)."""
        return self.dtype.itemsize * self.channels


U8 = np.dtype(np.uint8)
U16 = np.dtype(np.uint16)
NATIVE_BIG = sys.byteorder == "big"
_MAX_CHANNELS = 512  # OpenCV's CV_CN_MAX
COLOUR_KINDS = ("rgb", "bgr", "rgba", "bgra")


def _named_encodings() -> dict[str, EncodingInfo]:
    table: dict[str, EncodingInfo] = {}

    def add(name: str, dtype: np.dtype, channels: int, kind: str) -> None:
        table[name] = EncodingInfo(name, dtype, channels, kind)

    for bits, dtype in (("8", U8), ("16", U16)):
        add("mono" + bits, dtype, 1, "mono")
        for kind in COLOUR_KINDS:
            add(kind + bits, dtype, len(kind), kind)
        for pattern in ("rggb", "bggr", "gbrg", "grbg"):
            add(f"bayer_{pattern}{bits}", dtype, 1, "bayer_" + pattern)
    for name in ("yuv422", "uyvy"):
        add(name, U8, 2, "uyvy")
    for name in ("yuv422_yuy2", "yuyv"):
        add(name, U8, 2, "yuyv")
    return table


_NAMED = _named_encodings()
_TYPE_RE = re.compile(r"(8U|8S|16U|16S|32S|32F|64F)(?:C([0-9]{1,6}))?")
_TYPE_DTYPES = {
    "8U": np.dtype(np.uint8), "8S": np.dtype(np.int8), "16U": np.dtype(np.uint16),
    "16S": np.dtype(np.int16), "32S": np.dtype(np.int32), "32F": np.dtype(np.float32),
    "64F": np.dtype(np.float64),
}
DTYPE_TYPES = {dtype: depth for depth, dtype in _TYPE_DTYPES.items()}

TO_RGB = {
    "bgr": cv2.COLOR_BGR2RGB, "rgba": cv2.COLOR_RGBA2RGB, "bgra": cv2.COLOR_BGRA2RGB,
    "uyvy": cv2.COLOR_YUV2RGB_UYVY, "yuyv": cv2.COLOR_YUV2RGB_YUY2,
    # ROS names the top-left 2x2 cell, OpenCV pixels (1,1),(1,2): cv_bridge's mapping.
    "bayer_rggb": cv2.COLOR_BayerBG2RGB, "bayer_bggr": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg": cv2.COLOR_BayerGR2RGB, "bayer_grbg": cv2.COLOR_BayerGB2RGB,
}


def encoding_info(encoding: str) -> EncodingInfo:
    """Describe a supported encoding name, or raise :class:`ImageCodecError` naming the rest."""
    if not isinstance(encoding, str):
        raise ImageCodecError(f"encoding must be a string, got {type(encoding).__name__}")
    info = _NAMED.get(encoding)
    if info is not None:
        return info
    match = _TYPE_RE.fullmatch(encoding)
    if match is not None:
        channels = int(match.group(2) or 1)
        if 1 <= channels <= _MAX_CHANNELS:
            return EncodingInfo(encoding, _TYPE_DTYPES[match.group(1)], channels, "type")
    raise ImageCodecError(
        f"unsupported image encoding {encoding[:64]!r}; supported: {', '.join(_NAMED)}, "
        "and OpenCV types such as 8UC1, 8UC3, 16UC1, 32FC1 (8U|8S|16U|16S|32S|32F|64F + Cn)"
    )


