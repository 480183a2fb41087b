"""Raw sensor_msgs/Image: decoding (cv_bridge's passthrough), conversion to RGB for the engine,
and encoding (``cv2_to_imgmsg``)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from seg_accel_ros.image_codec.encodings import (
    DTYPE_TYPES,
    NATIVE_BIG,
    TO_RGB,
    U8,
    EncodingInfo,
    ImageCodecError,
    encoding_info,
)
from seg_accel_ros.image_codec.messages import (
    ImageFields,
    ImageMsgLike,
    as_int,
    bytes_array,
    check_size,
    message_field,
    read_only,
    uint_field,
)


def decode_image(msg: ImageMsgLike, *, max_pixels: int | None = None,
                 copy: bool = False) -> np.ndarray:
    """sensor_msgs/Image -> array as cv_bridge's ``imgmsg_to_cv2(msg, 'passthrough')``.

    Returns a read-only view of ``msg.data`` where possible (``copy=True``: a writable copy).
    """
    info = encoding_info(message_field(msg, "encoding"))
    height = uint_field(msg, "height")
    width = uint_field(msg, "width")
    step = uint_field(msg, "step")
    bigendian = uint_field(msg, "is_bigendian") != 0
    check_size(height, width, max_pixels)
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
    buf = bytes_array(message_field(msg, "data"))
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
    return arr.copy() if copy else read_only(arr)



def check_array(image: Any, info: EncodingInfo) -> np.ndarray:
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


def scale16(image: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 as cv_bridge: round(v * 255 / 65535)."""
    return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)


def _float_to_u8(image: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(image.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(values, 0.0, 1.0, out=values)
    values *= 255.0
    np.rint(values, out=values)
    return values.astype(np.uint8)


def rgb8_from_array(image: np.ndarray, info: EncodingInfo) -> np.ndarray:
    """A passthrough array of encoding ``info`` as HxWx3 uint8 RGB."""
    kind, depth = info.kind, info.dtype
    if kind == "type":
        if info.channels != 1 or depth.kind == "i":
            raise ImageCodecError(
                f"cannot convert {info.name!r} to rgb8: only unsigned or float single-channel "
                "type encodings have a grey-level meaning"
            )
        kind = "mono"
        if depth.kind == "f":
            image, depth = _float_to_u8(image), U8
    if kind == "rgb" and depth == U8:
        return image
    if kind in ("uyvy", "yuyv") and image.shape[1] % 2:
        raise ImageCodecError(f"{info.name!r} needs an even width, got {image.shape[1]}")
    try:
        if kind == "mono":
            out = image if depth == U8 else scale16(image)
            return cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)
        out = cv2.cvtColor(image, TO_RGB[kind]) if kind != "rgb" else image
        return out if depth == U8 else scale16(out)
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
        image = check_array(source, info)
        check_size(image.shape[0], image.shape[1], max_pixels)
    else:
        if encoding is not None:
            raise ImageCodecError("pass encoding only with an array; a message carries its own")
        info = encoding_info(message_field(source, "encoding"))
        image = decode_image(source, max_pixels=max_pixels)
    return rgb8_from_array(image, info)



def _passthrough_name(image: np.ndarray) -> str:
    depth = DTYPE_TYPES.get(image.dtype.newbyteorder("="))
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
    check_array(image, info)  # validates dtype and channels; byte order is kept below
    height, width = image.shape[:2]
    check_size(height, width, None)
    order = image.dtype.byteorder
    bigendian = order == ">" or (order == "=" and NATIVE_BIG)
    row_bytes = width * info.pixel_bytes
    if step is None or step == row_bytes:
        return ImageFields(height, width, encoding, int(bigendian), row_bytes, image.tobytes())
    step = as_int(step, "step")
    if step < row_bytes or step % info.dtype.itemsize:
        raise ImageCodecError(
            f"step {step} must be >= the row size {row_bytes} and a multiple of "
            f"{info.dtype.itemsize}"
        )
    try:
        padded = np.zeros((height, step), U8)
    except (MemoryError, ValueError) as exc:
        raise ImageCodecError(f"cannot allocate {height} rows of step {step}: {exc}") from None
    padded[:, :row_bytes] = np.ascontiguousarray(image).view(U8).reshape(height, row_bytes)
    return ImageFields(height, width, encoding, int(bigendian), step, padded.tobytes())


