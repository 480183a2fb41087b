"""ROS image messages <-> numpy arrays: our own small replacement for cv_bridge.

cv_bridge cannot be installed on machines without a ROS install, so the node, the rosbag replay
and the evaluator all convert images here. The module imports neither rclpy nor message
packages: it reads any object with the ``sensor_msgs/Image`` fields (``height, width, encoding,
is_bigendian, step, data``) or the ``sensor_msgs/CompressedImage`` fields (``format, data``),
which covers rclpy messages (``data`` is an ``array.array('B')``) and ``rosbags`` messages
(``data`` is a uint8 ndarray). Encoders return plain field values (:class:`ImageFields`,
:class:`CompressedImageFields`); :func:`fill_image_msg` copies them into a caller's message.

Semantics (cv_bridge's, unless noted):

* :func:`decode_image` is ``imgmsg_to_cv2(msg, 'passthrough')``: shape ``(h, w)`` for one
  channel, ``(h, w, c)`` otherwise, dtype per encoding, native byte order. Unlike cv_bridge
  (which always copies) it returns a **read-only view** of ``msg.data`` whenever it can (row
  padding included); pass ``copy=True`` for a writable array of your own. Big-endian
  multi-byte data is byte-swapped into a new, writable array.
* ``data`` longer than ``height * step`` is accepted and the trailing bytes are ignored, as
  cv_bridge does; shorter data is an error. ``step`` must be at least ``width`` times the
  bytes per pixel and a multiple of the element size (cv::Mat's rule).
* :func:`to_rgb8` is ``imgmsg_to_cv2(msg, 'rgb8')``: OpenCV colour conversions, mono
  replicated to three channels, 16-bit values scaled by 255/65535 with rounding (cv_bridge's
  ``convertTo``), yuv422/uyvy and yuv422_yuy2/yuyv through ``COLOR_YUV2RGB_UYVY`` /
  ``COLOR_YUV2RGB_YUY2``, Bayer through cv_bridge's demosaicing codes. Deliberate extensions
  (cv_bridge refuses these): single-channel type encodings are treated as grey, ``8UC1`` like
  mono8, ``16UC1`` like mono16, ``32FC1`` / ``64FC1`` as intensities in [0, 1] (clipped, NaN
  -> 0, times 255, rounded). Signed and multi-channel type encodings (``8UC3`` ...) carry no
  colour meaning and are refused, as cv_bridge does.
* :func:`encode_image` is ``cv2_to_imgmsg``: ``'passthrough'`` names the OpenCV type
  (``8UC3``), ``is_bigendian`` follows the array's byte order, ``step`` is tight unless a
  larger one is asked for (padding bytes are zero).
* Compressed images follow compressed_image_transport: formats such as ``'jpeg'``, ``'png'``,
  ``'rgb8; jpeg compressed bgr8'`` or ``'mono16; png compressed '``. ``compressedDepth`` is
  not supported.

Every failure caused by the input raises :class:`ImageCodecError` (a ``ValueError``).
"""

from __future__ import annotations

import array
import operator
import re
import sys
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

__all__ = [
    "CompressedImageFields",
    "CompressedImageMsgLike",
    "EncodingInfo",
    "ImageCodecError",
    "ImageFields",
    "ImageMsgLike",
    "compressed_to_rgb8",
    "decode_compressed",
    "decode_image",
    "encode_compressed",
    "encode_image",
    "encoding_info",
    "fill_image_msg",
    "to_rgb8",
]


class ImageCodecError(ValueError):
    """An image message, array or compressed stream that cannot be converted; says why."""


class ImageMsgLike(Protocol):
    """Anything with the sensor_msgs/Image fields (rclpy message, rosbags message, ...)."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: Any


class CompressedImageMsgLike(Protocol):
    """Anything with the sensor_msgs/CompressedImage fields."""

    format: str
    data: Any


@dataclass(frozen=True)
class ImageFields:
    """Field values of a sensor_msgs/Image, for the caller to copy into its message type."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes


@dataclass(frozen=True)
class CompressedImageFields:
    """Field values of a sensor_msgs/CompressedImage."""

    format: str
    data: bytes


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


_U8 = np.dtype(np.uint8)
_U16 = np.dtype(np.uint16)
_NATIVE_BIG = sys.byteorder == "big"
_MAX_CHANNELS = 512  # OpenCV's CV_CN_MAX
_COLOUR_KINDS = ("rgb", "bgr", "rgba", "bgra")


def _named_encodings() -> dict[str, EncodingInfo]:
    table: dict[str, EncodingInfo] = {}

    def add(name: str, dtype: np.dtype, channels: int, kind: str) -> None:
        table[name] = EncodingInfo(name, dtype, channels, kind)

    for bits, dtype in (("8", _U8), ("16", _U16)):
        add("mono" + bits, dtype, 1, "mono")
        for kind in _COLOUR_KINDS:
            add(kind + bits, dtype, len(kind), kind)
        for pattern in ("rggb", "bggr", "gbrg", "grbg"):
            add(f"bayer_{pattern}{bits}", dtype, 1, "bayer_" + pattern)
    for name in ("yuv422", "uyvy"):
        add(name, _U8, 2, "uyvy")
    for name in ("yuv422_yuy2", "yuyv"):
        add(name, _U8, 2, "yuyv")
    return table


_NAMED = _named_encodings()
_TYPE_RE = re.compile(r"(8U|8S|16U|16S|32S|32F|64F)(?:C([0-9]{1,6}))?")
_TYPE_DTYPES = {
    "8U": np.dtype(np.uint8), "8S": np.dtype(np.int8), "16U": np.dtype(np.uint16),
    "16S": np.dtype(np.int16), "32S": np.dtype(np.int32), "32F": np.dtype(np.float32),
    "64F": np.dtype(np.float64),
}
_DTYPE_TYPES = {dtype: depth for depth, dtype in _TYPE_DTYPES.items()}

_TO_RGB = {
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


# ----------------------------------------------------------------------------- decoding


def _field(msg: Any, name: str) -> Any:
    try:
        return getattr(msg, name)
    except AttributeError:
        raise ImageCodecError(f"message has no {name!r} field") from None


def _uint_field(msg: Any, name: str) -> int:
    value = _field(msg, name)
    try:
        number = operator.index(value)
    except TypeError:
        raise ImageCodecError(
            f"{name} must be an integer, got {type(value).__name__} {str(value)[:32]}"
        ) from None
    if number < 0:
        raise ImageCodecError(f"{name} must not be negative, got {number}")
    return number


def _as_bytes_array(data: Any) -> np.ndarray:
    """The message's data as a flat uint8 array, without a copy where possible."""
    if isinstance(data, np.ndarray):
        if data.dtype != _U8:
            raise ImageCodecError(f"data must hold uint8 values, got a {data.dtype} array")
        return data.reshape(-1)
    if isinstance(data, array.array) and data.typecode not in "Bb":
        raise ImageCodecError(f"data must be an array.array('B'), got typecode {data.typecode!r}")
    if isinstance(data, (bytes, bytearray, memoryview, array.array)):
        try:
            return np.frombuffer(data, dtype=_U8)
        except (ValueError, TypeError) as exc:
            raise ImageCodecError(f"data is not a contiguous byte buffer: {exc}") from None
    if isinstance(data, (list, tuple)):
        if not data:
            return np.empty(0, _U8)
        try:
            values = np.asarray(data)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ImageCodecError(f"data is not a sequence of bytes: {exc}") from None
        if values.ndim != 1 or values.dtype.kind not in "iub":
            raise ImageCodecError("data must be a flat sequence of integers in 0..255")
        if values.min() < 0 or values.max() > 255:
            raise ImageCodecError("data values must be in 0..255")
        return values.astype(_U8)
    raise ImageCodecError(f"data must be bytes-like or a uint8 sequence, not {type(data).__name__}")


def _as_int(value: Any, name: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise ImageCodecError(f"{name} must be an integer, got {value!r:.40}") from None


def _check_size(height: int, width: int, max_pixels: int | None) -> None:
    if height == 0 or width == 0:
        raise ImageCodecError(f"image is empty: width {width} x height {height}")
    if max_pixels is not None and height * width > _as_int(max_pixels, "max_pixels"):
        raise ImageCodecError(
            f"image of {width}x{height} = {width * height} pixels exceeds max_pixels={max_pixels}"
        )


def _read_only(arr: np.ndarray) -> np.ndarray:
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


def decode_image(msg: ImageMsgLike, *, max_pixels: int | None = None,
                 copy: bool = False) -> np.ndarray:
    """sensor_msgs/Image -> array as cv_bridge's ``imgmsg_to_cv2(msg, 'passthrough')``.

    Returns a read-only view of ``msg.data`` where possible (``copy=True``: a writable copy).
    """
    info = encoding_info(_field(msg, "encoding"))
    height = _uint_field(msg, "height")
    width = _uint_field(msg, "width")
    step = _uint_field(msg, "step")
    bigendian = _uint_field(msg, "is_bigendian") != 0
    _check_size(height, width, max_pixels)
    row_bytes = width * info.pixel_bytes
    if step < row_bytes:
        raise ImageCodecError(
            f"step {step} is smaller than width * bytes-per-pixel = {width} * "
            f"{info.pixel_bytes} = {row_bytes} for encoding {info.name!r}"
        )
    if step % info.dtype.itemsize:
        raise ImageCodecError(
            f"step {step} is not a multiple of the {info.dtype.itemsize}-byte element size "
            f"of encoding {info.name!r}"
        )
    buf = _as_bytes_array(_field(msg, "data"))
    expected = height * step
    if buf.size < expected:
        raise ImageCodecError(
            f"data has {buf.size} bytes, expected height * step = {height} * {step} = {expected}"
        )
    rows = buf[:expected].reshape(height, step)
    if step != row_bytes:
        rows = rows[:, :row_bytes]
    dtype = info.dtype.newbyteorder(">" if bigendian else "<")
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    arr = rows.view(dtype).reshape(shape)
    if not arr.dtype.isnative:
        return arr.astype(info.dtype)  # byte swap: a new array
    return arr.copy() if copy else _read_only(arr)


# ------------------------------------------------------------------------ to RGB (uint8)


def _check_array(image: Any, info: EncodingInfo) -> np.ndarray:
    """Validate that ``image`` is a passthrough-shaped array for ``info``; return it native."""
    if not isinstance(image, np.ndarray):
        raise ImageCodecError(f"expected a numpy array, got {type(image).__name__}")
    channels = 1 if image.ndim == 2 else (image.shape[2] if image.ndim == 3 else -1)
    if channels != info.channels or image.dtype.newbyteorder("=") != info.dtype:
        raise ImageCodecError(
            f"encoding {info.name!r} needs a {info.dtype} array with {info.channels} "
            f"channel(s), got {image.dtype} with shape {image.shape}"
        )
    if not image.dtype.isnative:
        image = image.astype(info.dtype)
    if info.channels == 1 and image.ndim == 3:
        image = image[:, :, 0]
    return image


def _scale16(image: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 as cv_bridge: round(v * 255 / 65535)."""
    return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)


def _float_to_u8(image: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(image.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(values, 0.0, 1.0, out=values)
    values *= 255.0
    np.rint(values, out=values)
    return values.astype(np.uint8)


def _rgb8_from_array(image: np.ndarray, info: EncodingInfo) -> np.ndarray:
    kind, depth = info.kind, info.dtype
    if kind == "type":
        if info.channels != 1 or depth.kind == "i":
            raise ImageCodecError(
                f"cannot convert {info.name!r} to rgb8: only unsigned or float single-channel "
                "type encodings have a grey-level meaning"
            )
        kind = "mono"
        if depth.kind == "f":
            image, depth = _float_to_u8(image), _U8
    if kind == "rgb" and depth == _U8:
        return image
    if kind in ("uyvy", "yuyv") and image.shape[1] % 2:
        raise ImageCodecError(f"{info.name!r} needs an even width, got {image.shape[1]}")
    try:
        if kind == "mono":
            out = image if depth == _U8 else _scale16(image)
            return cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)
        out = cv2.cvtColor(image, _TO_RGB[kind]) if kind != "rgb" else image
        return out if depth == _U8 else _scale16(out)
    except cv2.error as exc:
        raise ImageCodecError(f"OpenCV cannot convert {info.name!r} to rgb8: {exc}") from None


def to_rgb8(source: ImageMsgLike | np.ndarray, encoding: str | None = None, *,
            max_pixels: int | None = None) -> np.ndarray:
    """Image message (or passthrough array + its encoding) -> HxWx3 uint8 RGB for the engine.

    As cv_bridge's ``imgmsg_to_cv2(msg, 'rgb8')``; rgb8 input comes back as a read-only view.
    """
    if isinstance(source, np.ndarray):
        if encoding is None:
            raise ImageCodecError("to_rgb8 needs the encoding of an array")
        info = encoding_info(encoding)
        image = _check_array(source, info)
        _check_size(image.shape[0], image.shape[1], max_pixels)
    else:
        if encoding is not None:
            raise ImageCodecError("pass encoding only with an array; a message carries its own")
        info = encoding_info(_field(source, "encoding"))
        image = decode_image(source, max_pixels=max_pixels)
    return _rgb8_from_array(image, info)


# ----------------------------------------------------------------------------- encoding


def _passthrough_name(image: np.ndarray) -> str:
    depth = _DTYPE_TYPES.get(image.dtype.newbyteorder("="))
    if depth is None or image.dtype.kind not in "iuf":
        raise ImageCodecError(f"arrays of dtype {image.dtype} have no OpenCV type encoding")
    channels = 1 if image.ndim == 2 else image.shape[2]
    return f"{depth}C{channels}"


def encode_image(image: np.ndarray, encoding: str = "passthrough", *,
                 step: int | None = None) -> ImageFields:
    """Array -> sensor_msgs/Image fields, as cv_bridge's ``cv2_to_imgmsg``; tight step by default.

    ``step`` larger than the row size pads every row with zero bytes (for tests and interop).
    """
    if not isinstance(image, np.ndarray):
        raise ImageCodecError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise ImageCodecError(f"expected an HxW or HxWxC array, got shape {image.shape}")
    if encoding == "passthrough":
        encoding = _passthrough_name(image)
    info = encoding_info(encoding)
    _check_array(image, info)  # validates dtype and channels; byte order is kept below
    height, width = image.shape[:2]
    _check_size(height, width, None)
    order = image.dtype.byteorder
    bigendian = order == ">" or (order == "=" and _NATIVE_BIG)
    row_bytes = width * info.pixel_bytes
    if step is None or step == row_bytes:
        return ImageFields(height, width, encoding, int(bigendian), row_bytes, image.tobytes())
    step = _as_int(step, "step")
    if step < row_bytes or step % info.dtype.itemsize:
        raise ImageCodecError(
            f"step {step} must be >= the row size {row_bytes} and a multiple of "
            f"{info.dtype.itemsize}"
        )
    try:
        padded = np.zeros((height, step), _U8)
    except (MemoryError, ValueError) as exc:
        raise ImageCodecError(f"cannot allocate {height} rows of step {step}: {exc}") from None
    padded[:, :row_bytes] = np.ascontiguousarray(image).view(_U8).reshape(height, row_bytes)
    return ImageFields(height, width, encoding, int(bigendian), step, padded.tobytes())


def _data_like(current: Any, data: bytes) -> Any:
    if isinstance(current, array.array):
        return array.array("B", data)  # rclpy: skips the per-byte field check, one memcpy
    if isinstance(current, np.ndarray):
        return np.frombuffer(data, _U8).copy()  # rosbags: a writable uint8 array
    if isinstance(current, list):
        return list(data)
    return data


def fill_image_msg(msg: Any, fields: ImageFields | CompressedImageFields) -> Any:
    """Copy encoded fields into any Image / CompressedImage message object; returns ``msg``.

    ``data`` keeps the container type the message already holds (rclpy ``array.array``,
    rosbags ndarray, list), so rclpy's slow per-byte check on a bytes value is avoided.
    """
    if isinstance(fields, ImageFields):
        msg.height = fields.height
        msg.width = fields.width
        msg.encoding = fields.encoding
        msg.is_bigendian = fields.is_bigendian
        msg.step = fields.step
    elif isinstance(fields, CompressedImageFields):
        msg.format = fields.format
    else:
        raise ImageCodecError(f"expected ImageFields or CompressedImageFields, got {fields!r}")
    msg.data = _data_like(getattr(msg, "data", None), fields.data)
    return msg


# ----------------------------------------------------------------------------- compressed

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(raw: bytes) -> tuple[int, int] | None:
    """(height, width) from the first SOF segment, or None if the header cannot be read."""
    i, n = 2, len(raw)
    while i + 4 <= n:
        if raw[i] != 0xFF:
            return None
        marker = raw[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xD9, 0xDA):
            return None
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            return int.from_bytes(raw[i + 5:i + 7], "big"), int.from_bytes(raw[i + 7:i + 9], "big")
        length = int.from_bytes(raw[i + 2:i + 4], "big")
        if length < 2:
            return None
        i += 2 + length
    return None


def _peek_size(raw: bytes) -> tuple[int, int] | None:
    if raw.startswith(_PNG_MAGIC) and len(raw) >= 24 and raw[12:16] == b"IHDR":
        return int.from_bytes(raw[20:24], "big"), int.from_bytes(raw[16:20], "big")
    if raw.startswith(_JPEG_MAGIC):
        return _jpeg_size(raw)
    return None


def _parse_format(fmt: str) -> tuple[EncodingInfo | None, bool]:
    """(declared encoding if known, whether the decoded colour channels are in BGR order)."""
    if ";" not in fmt:
        return None, True  # plain 'jpeg' / 'png': a standard image file, OpenCV gives BGR
    declared, tail = fmt.split(";", 1)
    if "compresseddepth" in tail.lower():
        raise ImageCodecError(f"compressedDepth images are not supported (format {fmt[:64]!r})")
    try:
        info = encoding_info(declared.strip())
    except ImageCodecError:
        info = None
    # As compressed_image_transport's subscriber: only "compressed bgr..." means BGR data.
    return info, "compressed bgr" in tail


def decode_compressed(msg: CompressedImageMsgLike, *,
                      max_pixels: int | None = None) -> tuple[np.ndarray, str]:
    """CompressedImage -> (array, encoding describing it), as compressed_image_transport.

    Colour comes back as decoded (usually 'bgr8'); use :func:`compressed_to_rgb8` for RGB.
    """
    fmt = _field(msg, "format")
    if not isinstance(fmt, str):
        raise ImageCodecError(f"format must be a string, got {type(fmt).__name__}")
    declared, bgr_order = _parse_format(fmt)
    buf = _as_bytes_array(_field(msg, "data"))
    if buf.size == 0:
        raise ImageCodecError(f"compressed image (format {fmt[:64]!r}) has no data")
    raw = buf.tobytes()
    if max_pixels is not None:
        size = _peek_size(raw)
        if size is not None:
            _check_size(max(size[0], 1), max(size[1], 1), max_pixels)
    if raw.startswith(_JPEG_MAGIC):
        scan = raw.find(b"\xff\xda")
        if scan < 0 or raw.rfind(b"\xff\xd9") < scan:
            raise ImageCodecError(
                f"truncated JPEG: no image data or no end-of-image marker ({len(raw)} bytes)"
            )
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageCodecError(f"cannot decode compressed image: {exc}") from None
    if image is None or image.size == 0:
        raise ImageCodecError(
            f"cannot decode compressed image (format {fmt[:64]!r}, {len(raw)} bytes): corrupt, "
            "truncated or not a supported image format"
        )
    _check_size(image.shape[0], image.shape[1], max_pixels)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if (declared is not None and declared.kind not in _COLOUR_KINDS
            and declared.channels == channels and declared.dtype == image.dtype):
        return image, declared.name
    bits = {_U8: "8", _U16: "16"}.get(image.dtype)
    if bits is None or channels not in (1, 3, 4):
        raise ImageCodecError(
            f"decoded image has {channels} channel(s) of {image.dtype}; no matching encoding"
        )
    if channels == 1:
        return image, "mono" + bits
    order = "bgr" if bgr_order else "rgb"
    return image, order + ("a" if channels == 4 else "") + bits


def compressed_to_rgb8(msg: CompressedImageMsgLike, *,
                       max_pixels: int | None = None) -> np.ndarray:
    """CompressedImage -> HxWx3 uint8 RGB for the engine (same rules as :func:`to_rgb8`)."""
    image, encoding = decode_compressed(msg, max_pixels=max_pixels)
    return _rgb8_from_array(image, encoding_info(encoding))


def encode_compressed(image: np.ndarray, encoding: str, fmt: str = "jpeg", *,
                      jpeg_quality: int = 95, png_level: int = 3) -> CompressedImageFields:
    """Array -> CompressedImage fields with compressed_image_transport's format string.

    JPEG takes colour (stored as bgr8) and mono (stored as mono8); PNG takes colour (stored as
    bgr/bgra at the source depth) and any 8/16-bit unsigned 1/3/4-channel encoding as is.
    """
    info = encoding_info(encoding)
    image = _check_array(image, info)
    _check_size(image.shape[0], image.shape[1], None)
    codec = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}.get(str(fmt).lower())
    if codec is None:
        raise ImageCodecError(f"unsupported compression format {fmt!r}; use 'jpeg' or 'png'")
    jpeg_quality = _as_int(jpeg_quality, "jpeg_quality")
    png_level = _as_int(png_level, "png_level")
    if not 0 <= jpeg_quality <= 100 or not 0 <= png_level <= 9:
        raise ImageCodecError(f"jpeg_quality {jpeg_quality} must be in 0..100, "
                              f"png_level {png_level} in 0..9")
    bits = "8" if info.dtype == _U8 else "16"
    target = ""
    try:
        if info.kind in _COLOUR_KINDS:
            keep_alpha = codec == "png" and info.kind.endswith("a")
            target = "bgra" if keep_alpha else "bgr"
            code = {
                ("rgb", False): cv2.COLOR_RGB2BGR, ("rgba", False): cv2.COLOR_RGBA2BGR,
                ("bgra", False): cv2.COLOR_BGRA2BGR, ("rgba", True): cv2.COLOR_RGBA2BGRA,
            }.get((info.kind, keep_alpha))
            out = image if code is None else cv2.cvtColor(image, code)
            if codec == "jpeg" and info.dtype == _U16:
                out, bits = _scale16(out), "8"
            target += bits
        elif codec == "jpeg" and info.kind == "mono":
            out, target = (image if info.dtype == _U8 else _scale16(image)), "mono8"
        elif (codec == "png" and info.dtype in (_U8, _U16) and info.channels in (1, 3, 4)
              and (info.kind in ("mono", "type") or info.kind.startswith("bayer"))):
            out = image
        else:
            raise ImageCodecError(
                f"cannot store encoding {encoding!r} as {codec}: JPEG takes colour and mono "
                "encodings, PNG colour and 8/16-bit unsigned 1, 3 or 4-channel ones"
            )
        params = ([cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if codec == "jpeg"
                  else [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
        ok, encoded = cv2.imencode(".jpg" if codec == "jpeg" else ".png", out, params)
    except cv2.error as exc:
        raise ImageCodecError(f"OpenCV cannot encode {encoding!r} as {codec}: {exc}") from None
    if not ok:
        raise ImageCodecError(f"OpenCV failed to encode {encoding!r} as {codec}")
    return CompressedImageFields(f"{encoding}; {codec} compressed {target}", encoded.tobytes())
