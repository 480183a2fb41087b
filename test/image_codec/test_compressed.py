"""seg_accel_ros.image_codec, sensor_msgs/CompressedImage as compressed_image_transport writes
it: JPEG and PNG round trips, format strings, data containers, corrupt and oversized streams."""

from __future__ import annotations

import array
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from codec_cases import (
    as_msg,
    jpeg_bytes,
    png_bytes,
    sample,
    smooth_rgb,
)

from seg_accel_ros.image_codec import (
    ImageCodecError,
    compressed_to_rgb8,
    decode_compressed,
    encode_compressed,
    encoding_info,
    to_rgb8,
)


def test_jpeg_round_trip_rgb8() -> None:
    image = smooth_rgb()
    fields = encode_compressed(image, "rgb8", "jpeg", jpeg_quality=95)
    assert fields.format == "rgb8; jpeg compressed bgr8"
    assert fields.data[:3] == b"\xff\xd8\xff"
    decoded, encoding = decode_compressed(as_msg(fields))
    assert encoding == "bgr8"
    out = compressed_to_rgb8(as_msg(fields))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - image).mean() < 3
    np.testing.assert_array_equal(out, decoded[..., ::-1])


def test_jpeg_colour_order_is_right() -> None:
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 250
    for encoding, image in (("rgb8", red), ("bgr8", red[..., ::-1]), ("rgba8", np.dstack(
            [red, np.full((16, 16), 7, np.uint8)]))):
        out = compressed_to_rgb8(as_msg(encode_compressed(image, encoding, "jpg")))
        assert out[..., 0].min() > 230 and out[..., 1:].max() < 20, encoding


def test_jpeg_mono() -> None:
    image = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))
    fields = encode_compressed(image, "mono8", "jpeg")
    assert fields.format == "mono8; jpeg compressed mono8"
    decoded, encoding = decode_compressed(as_msg(fields))
    assert encoding == "mono8" and decoded.shape == image.shape
    assert np.abs(decoded.astype(int) - image).mean() < 3
    mono16 = encode_compressed(image.astype(np.uint16) * 257, "mono16", "jpeg")
    assert mono16.format == "mono16; jpeg compressed mono8"


@pytest.mark.parametrize(("encoding", "fmt", "out_encoding"), [
    ("rgb8", "rgb8; png compressed bgr8", "bgr8"),
    ("bgr8", "bgr8; png compressed bgr8", "bgr8"),
    ("rgba8", "rgba8; png compressed bgra8", "bgra8"),
    ("bgra8", "bgra8; png compressed bgra8", "bgra8"),
    ("rgb16", "rgb16; png compressed bgr16", "bgr16"),
    ("mono8", "mono8; png compressed ", "mono8"),
    ("mono16", "mono16; png compressed ", "mono16"),
    ("16UC1", "16UC1; png compressed ", "16UC1"),
    ("8UC3", "8UC3; png compressed ", "8UC3"),
    ("bayer_rggb8", "bayer_rggb8; png compressed ", "bayer_rggb8"),
])
def test_png_is_lossless(encoding: str, fmt: str, out_encoding: str) -> None:
    image = sample(encoding, 6, 9)
    fields = encode_compressed(image, encoding, "png")
    assert fields.format == fmt
    decoded, got = decode_compressed(as_msg(fields))
    assert got == out_encoding
    if encoding.startswith("rgb"):
        order = [2, 1, 0, 3][: image.shape[2]]
        np.testing.assert_array_equal(decoded, image[..., order])
    else:
        np.testing.assert_array_equal(decoded, image)
    if encoding_info(encoding).kind != "type":
        np.testing.assert_array_equal(compressed_to_rgb8(as_msg(fields)), to_rgb8(image, encoding))


def test_plain_format_strings_are_standard_files() -> None:
    rgb = smooth_rgb()
    for fmt, ext in (("png", ".png"), ("jpeg", ".jpg"), ("", ".png")):
        data = cv2.imencode(ext, rgb[..., ::-1])[1].tobytes()  # a BGR image, as OpenCV writes
        out = compressed_to_rgb8(SimpleNamespace(format=fmt, data=data))
        assert np.abs(out.astype(int) - rgb).mean() < 3, fmt
    grey = cv2.imencode(".png", rgb[..., 0])[1].tobytes()
    decoded, encoding = decode_compressed(SimpleNamespace(format="png", data=grey))
    assert encoding == "mono8"
    np.testing.assert_array_equal(decoded, rgb[..., 0])


def test_legacy_format_without_bgr_target_is_rgb_data() -> None:
    # Old publishers wrote rgb8 data straight to the encoder; image_transport treats it as RGB.
    rgb = smooth_rgb()
    data = cv2.imencode(".png", rgb)[1].tobytes()
    msg = SimpleNamespace(format="rgb8; png compressed ", data=data)
    np.testing.assert_array_equal(compressed_to_rgb8(msg), rgb)


def test_compressed_data_containers() -> None:
    fields = encode_compressed(smooth_rgb(), "rgb8", "png")
    for data in (array.array("B", fields.data), np.frombuffer(fields.data, np.uint8),
                 bytearray(fields.data)):
        msg = SimpleNamespace(format=fields.format, data=data)
        np.testing.assert_array_equal(compressed_to_rgb8(msg), smooth_rgb())



@pytest.mark.parametrize(("fmt", "data", "message"), [
    ("jpeg", jpeg_bytes()[:-2], r"truncated JPEG: no image data or no end-of-image marker"),
    ("jpeg", jpeg_bytes()[: len(jpeg_bytes()) // 2], r"truncated JPEG"),
    ("jpeg", jpeg_bytes(True)[: len(jpeg_bytes(True)) * 2 // 3], r"truncated JPEG"),
    ("jpeg", jpeg_bytes()[:200], r"truncated JPEG"),
    ("png", png_bytes()[: len(png_bytes()) // 2], r"cannot decode compressed image"),
    ("png", png_bytes()[:-13], r"cannot decode compressed image"),
    ("png", png_bytes()[:30] + bytes(64) + png_bytes()[94:], r"cannot decode compressed image"),
    ("jpeg", b"not an image at all", r"cannot decode compressed image \(format 'jpeg', 19 bytes\)"),
    ("jpeg", b"", r"compressed image \(format 'jpeg'\) has no data"),
    ("16UC1; compressedDepth png", png_bytes(), r"compressedDepth images are not supported"),
])
def test_corrupt_or_truncated_compressed(fmt: str, data: bytes, message: str) -> None:
    with pytest.raises(ImageCodecError, match=message):
        compressed_to_rgb8(SimpleNamespace(format=fmt, data=data))


@pytest.mark.parametrize("data", [png_bytes(), jpeg_bytes(), jpeg_bytes(True)],
                         ids=["png", "jpeg", "progressive"])
def test_compressed_max_pixels_is_checked_from_the_header(data: bytes) -> None:
    assert compressed_to_rgb8(SimpleNamespace(format="x", data=data),
                              max_pixels=48 * 64).shape == (48, 64, 3)
    # the cut-off stream would fail to decode: the limit must be found in the header first
    truncated = SimpleNamespace(format="x", data=data[: len(data) // 2])
    with pytest.raises(ImageCodecError, match=r"64x48 = 3072 pixels exceeds max_pixels=3071"):
        compressed_to_rgb8(truncated, max_pixels=3071)


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((sample("uyvy"), "uyvy", "jpeg"), {}, r"cannot store encoding 'uyvy' as jpeg"),
    ((sample("32FC1"), "32FC1", "png"), {}, r"cannot store encoding '32FC1' as png"),
    ((sample("16UC1"), "16UC1", "jpeg"), {}, r"cannot store encoding '16UC1' as jpeg"),
    ((sample("rgb8"), "rgb8", "webp"), {}, r"unsupported compression format 'webp'"),
    ((sample("rgb8"), "rgb8", "jpeg"), {"jpeg_quality": 101}, r"jpeg_quality 101 must be in"),
    ((sample("rgb8"), "rgb8", "png"), {"png_level": "9"}, r"png_level must be an integer"),
    ((sample("rgb8"), "mono8", "png"), {}, r"encoding 'mono8' needs a uint8 array"),
])
def test_encode_compressed_errors(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(ImageCodecError, match=message):
        encode_compressed(*args, **kwargs)


