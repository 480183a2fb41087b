"""Message fields in and out: reading the sensor_msgs fields of any message object, and the
field values the encoders return for the caller to copy into its own message type."""

from __future__ import annotations

import array
import operator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from seg_accel_ros.image_codec.encodings import U8, ImageCodecError


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



def message_field(msg: Any, name: str) -> Any:
    """Field ``name`` of ``msg`` (ImageCodecError naming it when missing)."""
    try:
        return getattr(msg, name)
    except AttributeError:
        raise ImageCodecError(f"message has no {name!r} field") from None


def uint_field(msg: Any, name: str) -> int:
    """Field ``name`` of ``msg`` as a non-negative integer (ImageCodecError otherwise)."""
    value = message_field(msg, name)
    try:
        number = operator.index(value)
    except TypeError:
        raise ImageCodecError(
            f"{name} must be an integer, got {type(value).__name__} {str(value)[:32]}"
        ) from None
    if number < 0:
        raise ImageCodecError(f"{name} must not be negative, got {number}")
    return number


def bytes_array(data: Any) -> np.ndarray:
    """The message's data as a flat uint8 array, without a copy where possible."""
    if isinstance(data, np.ndarray):
        if data.dtype != U8:
            raise ImageCodecError(f"data must hold uint8 values, got a {data.dtype} array")
        return data.reshape(-1)
    if isinstance(data, array.array) and data.typecode not in "Bb":
        raise ImageCodecError(f"data must be an array.array('B'), got typecode {data.typecode!r}")
    if isinstance(data, (bytes, bytearray, memoryview, array.array)):
        try:
            return np.frombuffer(data, dtype=U8)
        except (ValueError, TypeError) as exc:
            raise ImageCodecError(f"data is not a contiguous byte buffer: {exc}") from None
    if isinstance(data, (list, tuple)):
        if not data:
            return np.empty(0, U8)
        try:
            values = np.asarray(data)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ImageCodecError(f"data is not a sequence of bytes: {exc}") from None
        if values.ndim != 1 or values.dtype.kind not in "iub":
            raise ImageCodecError("data must be a flat sequence of integers in 0..255")
        if values.min() < 0 or values.max() > 255:
            raise ImageCodecError("data values must be in 0..255")
        return values.astype(U8)
    raise ImageCodecError(f"data must be bytes-like or a uint8 sequence, not {type(data).__name__}")


def as_int(value: Any, name: str) -> int:
    """``value`` as an integer (ImageCodecError naming ``name`` otherwise)."""
    try:
        return operator.index(value)
    except TypeError:
        raise ImageCodecError(f"{name} must be an integer, got {value!r:.40}") from None


def check_size(height: int, width: int, max_pixels: int | None) -> None:
    """Refuse an empty image, or one above ``max_pixels`` (None: no limit)."""
    if height == 0 or width == 0:
        raise ImageCodecError(f"image is empty: width {width} x height {height}")
    if max_pixels is not None and height * width > as_int(max_pixels, "max_pixels"):
        raise ImageCodecError(
            f"image of {width}x{height} = {width * height} pixels exceeds max_pixels={max_pixels}"
        )


def read_only(arr: np.ndarray) -> np.ndarray:
    """``arr``, or a read-only view of it (decoded views must not write into messages)."""
    if arr.flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr



def _data_like(current: Any, data: bytes) -> Any:
    if isinstance(current, array.array):
        return array.array("B", data)  # rclpy: skips the per-byte field check, one memcpy
    if isinstance(current, np.ndarray):
        return np.frombuffer(data, U8).copy()  # rosbags: a writable uint8 array
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


