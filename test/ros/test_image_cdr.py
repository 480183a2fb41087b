"""Serialized images: rclpy reads back exactly what the node publishes, and the node reads
exactly what rclpy serialized; malformed bytes give the codec's own error."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seg_accel_ros.image_codec import ImageCodecError, decode_image
from seg_accel_ros.ros.image_cdr import (
    Header,
    Stamp,
    agrees_with_rclpy,
    header_stamp_ns,
    parse_compressed_image,
    parse_image,
    serialize_image,
)

rclpy_serialization = pytest.importorskip(
    "rclpy.serialization", reason="rclpy is not installed (make setup installs it)")
Image = pytest.importorskip("sensor_msgs.msg").Image
CompressedImage = pytest.importorskip("sensor_msgs.msg").CompressedImage

CASES = [  # (shape, dtype, encoding, frame_id): odd lengths move every alignment
    ((5, 7), np.uint8, "mono8", "camera"),
    ((3, 4, 3), np.uint8, "rgb8", "c"),
    ((2, 3, 3), np.uint8, "bgr8", ""),
    ((4, 5), np.dtype("<u2"), "mono16", "front_left_camera_optical"),
    ((720, 1280), np.uint8, "mono8", "camera"),
]


@pytest.mark.parametrize(("shape", "dtype", "encoding", "frame_id"), CASES)
def test_rclpy_deserializes_what_was_meant(shape, dtype, encoding, frame_id) -> None:
    pixels = np.random.default_rng(0).integers(0, 255, shape).astype(dtype)
    data = serialize_image(1_700_000_123, 456_789, frame_id, pixels, encoding)
    msg = rclpy_serialization.deserialize_message(data, Image)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_123, 456_789)
    assert msg.header.frame_id == frame_id and msg.encoding == encoding
    assert (msg.height, msg.width, msg.is_bigendian) == (shape[0], shape[1], 0)
    assert msg.step == pixels.strides[0]
    assert bytes(msg.data) == pixels.tobytes()


def test_non_contiguous_pixels_are_published_without_row_padding() -> None:
    pixels = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8)[:, ::2]
    msg = rclpy_serialization.deserialize_message(
        serialize_image(0, 0, "cam", pixels, "mono8"), Image)
    assert msg.step == 4 and bytes(msg.data) == pixels.tobytes()


def test_big_endian_pixels_are_flagged() -> None:
    pixels = np.arange(6, dtype=">u2").reshape(2, 3)
    msg = rclpy_serialization.deserialize_message(
        serialize_image(0, 0, "cam", pixels, "mono16"), Image)
    assert msg.is_bigendian == 1 and bytes(msg.data) == pixels.tobytes()


def test_agrees_with_this_rclpy() -> None:
    assert agrees_with_rclpy()


def test_other_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="HxW"):
        serialize_image(0, 0, "cam", np.zeros(4, np.uint8), "mono8")


def _serialized(msg) -> bytes:
    return rclpy_serialization.serialize_message(msg)


@pytest.mark.parametrize(("shape", "dtype", "encoding", "frame_id"), CASES)
def test_parse_image_reads_what_rclpy_serialized(shape, dtype, encoding, frame_id) -> None:
    pixels = np.random.default_rng(1).integers(0, 255, shape).astype(dtype)
    msg = Image(height=shape[0], width=shape[1], encoding=encoding, step=pixels.strides[0])
    msg.header.frame_id, msg.header.stamp.sec, msg.header.stamp.nanosec = frame_id, 12, 34
    msg.data = pixels.tobytes()
    parsed = parse_image(_serialized(msg))
    assert parsed.header == Header(Stamp(12, 34), frame_id)
    assert (parsed.height, parsed.width, parsed.encoding, parsed.is_bigendian, parsed.step) == (
        shape[0], shape[1], encoding, 0, pixels.strides[0])
    assert bytes(parsed.data) == pixels.tobytes()
    np.testing.assert_array_equal(decode_image(parsed), pixels)


def test_parse_compressed_image_reads_what_rclpy_serialized() -> None:
    msg = CompressedImage(format="jpeg")
    msg.header.frame_id, msg.header.stamp.sec = "front", 99
    msg.data = b"\xff\xd8\xff" + bytes(range(40))
    parsed = parse_compressed_image(_serialized(msg))
    assert parsed.header == Header(Stamp(99, 0), "front")
    assert parsed.format == "jpeg" and bytes(parsed.data) == bytes(msg.data)


def test_header_stamp_of_a_serialized_message() -> None:
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 5
    assert header_stamp_ns(_serialized(msg)) == 1_700_000_000_000_000_005


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 120))
def test_parsers_raise_only_their_own_error_on_any_bytes(data: bytes, cut: int) -> None:
    good = serialize_image(1, 2, "cam", np.zeros((3, 4), np.uint8), "mono8")
    for blob in (data, good[:cut], b"\x00\x01\x00\x00" + data):
        for parse in (parse_image, parse_compressed_image):
            with contextlib.suppress(ImageCodecError):
                parse(blob)
