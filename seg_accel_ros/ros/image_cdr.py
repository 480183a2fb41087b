"""sensor_msgs/Image and CompressedImage as serialized CDR bytes, both ways.

Publishing a message object copies the pixels into an ``array.array``, then into the C message,
then into the serialized sample; taking one does the reverse. Writing the CDR bytes directly
(rclpy's ``Publisher.publish(bytes)``) copies the pixels once, and reading them from a raw
subscription copies nothing: the node saves about 1 ms per 720p output, and its executor does
not deserialize the 30 Hz frames that the latest-frame-wins mailbox drops anyway.

The layout is plain CDR, little endian (encapsulation 0x0001), as the ROS 2 middlewares
serialize; :func:`agrees_with_rclpy` checks it against rclpy's own serializer, and the node
uses message objects where it does not agree.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

import numpy as np

from seg_accel_ros.image_codec import CompressedImageFields, ImageCodecError, ImageFields

ENCAPSULATION = b"\x00\x01\x00\x00"  # CDR, little endian, no options
_U32 = struct.Struct("<I")
_STAMP = struct.Struct("<iI")


def header_stamp_ns(data: bytes) -> int:
    """The header stamp (ns) of any serialized message that starts with a std_msgs/Header."""
    if len(data) < 4 + _STAMP.size or data[1] != 1:
        raise ValueError("not a little-endian CDR message with a header")
    sec, nanosec = _STAMP.unpack_from(data, 4)
    return sec * 1_000_000_000 + nanosec


def _align(buf: bytearray, size: int) -> None:
    buf.extend(b"\x00" * (-len(buf) % size))  # offsets count from the end of the encapsulation


def _string(buf: bytearray, text: str) -> None:
    raw = text.encode("utf-8")
    _align(buf, 4)
    buf += _U32.pack(len(raw) + 1) + raw + b"\x00"


def serialize_image(sec: int, nanosec: int, frame_id: str, pixels: np.ndarray,
                    encoding: str) -> bytes:
    """The CDR bytes of an Image holding ``pixels`` (HxW or HxWxC), rows unpadded."""
    if pixels.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC array, got shape {pixels.shape}")
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    order = pixels.dtype.byteorder
    big_endian = order == ">" or (order == "=" and sys.byteorder == "big")
    head = bytearray(_STAMP.pack(sec, nanosec))
    _string(head, frame_id)
    _align(head, 4)
    head += struct.pack("<II", height, width)
    _string(head, encoding)
    head.append(1 if big_endian and pixels.itemsize > 1 else 0)
    _align(head, 4)
    head += struct.pack("<II", pixels.strides[0], pixels.nbytes)
    return b"".join((ENCAPSULATION, head, memoryview(pixels).cast("B")))


def agrees_with_rclpy() -> bool:
    """Whether rclpy deserializes :func:`serialize_image` bytes into the intended message."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    try:
        msg = deserialize_message(serialize_image(7, 9, "cam", pixels, "rgb8"), Image)
    except Exception:  # a middleware with another wire format
        return False
    return ((msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id, msg.height,
             msg.width, msg.encoding, msg.is_bigendian, msg.step)
            == (7, 9, "cam", 2, 3, "rgb8", 0, 9) and bytes(msg.data) == pixels.tobytes())


@dataclass(frozen=True)
class Stamp:
    sec: int
    nanosec: int


@dataclass(frozen=True)
class Header:
    stamp: Stamp
    frame_id: str


@dataclass(frozen=True)
class SerializedImage(ImageFields):
    """A serialized sensor_msgs/Image's fields and header; ``data`` is a view into the bytes."""

    header: Header


@dataclass(frozen=True)
class SerializedCompressedImage(CompressedImageFields):
    """A serialized sensor_msgs/CompressedImage's fields and header; ``data`` is a view."""

    header: Header


class _Reader:
    """Reads CDR fields in order; every overrun is an ImageCodecError."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 4 or data[:2] != ENCAPSULATION[:2]:
            raise ImageCodecError("not a little-endian CDR message "
                                  f"(encapsulation {bytes(data[:4])!r})")
        self.view = memoryview(data)[4:]
        self.pos = 0

    def _take(self, size: int, align: int = 1) -> memoryview:
        self.pos += -self.pos % align
        if size < 0 or self.pos + size > len(self.view):
            raise ImageCodecError(f"truncated message: {size} bytes wanted at offset "
                                  f"{self.pos}, {len(self.view)} in all")
        chunk = self.view[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def u32(self) -> int:
        return _U32.unpack(self._take(4, 4))[0]

    def u8(self) -> int:
        return self._take(1)[0]

    def string(self) -> str:
        raw = self._take(self.u32())
        if not raw or raw[-1] != 0:
            raise ImageCodecError("malformed string in message")
        try:
            return bytes(raw[:-1]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImageCodecError(f"string is not UTF-8: {exc}") from None

    def octets(self) -> memoryview:
        return self._take(self.u32())

    def header(self) -> Header:
        sec, nanosec = _STAMP.unpack(self._take(8, 4))
        return Header(Stamp(sec, nanosec), self.string())


def parse_image(data: bytes) -> SerializedImage:
    """A serialized sensor_msgs/Image, without copying its pixels; ImageCodecError if malformed."""
    reader = _Reader(data)
    header = reader.header()
    height, width = reader.u32(), reader.u32()
    encoding = reader.string()
    is_bigendian = reader.u8()
    step = reader.u32()
    return SerializedImage(height, width, encoding, is_bigendian, step, reader.octets(), header)


def parse_compressed_image(data: bytes) -> SerializedCompressedImage:
    """A serialized sensor_msgs/CompressedImage; ImageCodecError if malformed."""
    reader = _Reader(data)
    header = reader.header()
    fmt = reader.string()
    return SerializedCompressedImage(fmt, reader.octets(), header)
