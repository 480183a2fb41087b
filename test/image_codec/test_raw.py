"""seg_accel_ros.image_codec, raw sensor_msgs/Image: round trips, errors, to_rgb8 with
cv_bridge's semantics, filling rclpy and rosbags messages, and cv_bridge itself where installed."""

from __future__ import annotations

import array
import dataclasses
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from codec_cases import (
    ALL,
    LITTLE,
    as_msg,
    good_msg,
    rgb8_of,
    sample,
    smooth_rgb,
)

from seg_accel_ros.image_codec import (
    ImageCodecError,
    compressed_to_rgb8,
    decode_image,
    encode_compressed,
    encode_image,
    encoding_info,
    fill_image_msg,
    to_rgb8,
)

# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("encoding", ALL)
@pytest.mark.parametrize("padded", [False, True], ids=["tight", "padded"])
def test_round_trip_every_encoding(encoding: str, padded: bool) -> None:
    image = sample(encoding)
    info = encoding_info(encoding)
    row = image.shape[1] * info.pixel_bytes
    step = row + 3 * info.dtype.itemsize if padded else None
    fields = encode_image(image, encoding, step=step)
    assert (fields.height, fields.width, fields.encoding) == (5, 7, encoding)
    assert fields.step == (step or row)
    assert fields.is_bigendian == int(not LITTLE)
    assert len(fields.data) == fields.height * fields.step
    if padded:
        rows = np.frombuffer(fields.data, np.uint8).reshape(5, step)
        assert not rows[:, row:].any(), "padding bytes must be zero"
    decoded = decode_image(as_msg(fields))
    assert decoded.dtype == info.dtype and decoded.shape == image.shape
    np.testing.assert_array_equal(decoded, image)


def test_passthrough_names_the_opencv_type() -> None:
    assert encode_image(np.zeros((2, 3, 3), np.uint8)).encoding == "8UC3"
    assert encode_image(np.zeros((2, 3), np.float32)).encoding == "32FC1"
    assert encode_image(np.zeros((2, 3, 1), np.uint16)).encoding == "16UC1"
    assert encode_image(np.zeros((2, 3, 2), np.int16)).encoding == "16SC2"
    # (h, w, 1) is accepted for one-channel encodings and decodes to (h, w), like cv_bridge
    fields = encode_image(np.arange(6, dtype=np.uint8).reshape(2, 3, 1), "mono8")
    assert decode_image(as_msg(fields)).shape == (2, 3)


def test_decode_is_a_read_only_view_without_copy() -> None:
    image = sample("rgb8", 4, 6)
    for step in (None, 6 * 3 + 5):
        fields = encode_image(image, "rgb8", step=step)
        data = np.frombuffer(bytearray(fields.data), np.uint8)  # writable source buffer
        msg = SimpleNamespace(**{**dataclasses.asdict(fields), "data": data})
        view = decode_image(msg)
        assert np.shares_memory(view, data)
        assert not view.flags.writeable
        owned = decode_image(msg, copy=True)
        assert owned.flags.writeable and not np.shares_memory(owned, data)
        np.testing.assert_array_equal(owned, image)


def test_data_may_be_array_list_bytearray_or_ndarray() -> None:
    image = sample("mono8", 3, 4)
    fields = encode_image(image, "mono8")
    for data in (fields.data, bytearray(fields.data), array.array("B", fields.data),
                 list(fields.data), np.frombuffer(fields.data, np.uint8), memoryview(fields.data)):
        msg = SimpleNamespace(**{**dataclasses.asdict(fields), "data": data})
        np.testing.assert_array_equal(decode_image(msg), image)


def test_longer_data_is_accepted_and_the_tail_ignored() -> None:
    image = sample("bgr8", 3, 4)
    fields = encode_image(image, "bgr8")
    msg = SimpleNamespace(**{**dataclasses.asdict(fields), "data": fields.data + b"\xff" * 7})
    np.testing.assert_array_equal(decode_image(msg), image)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1", "rgb16", "64FC1", "16SC1"])
@pytest.mark.parametrize("padded", [False, True], ids=["tight", "padded"])
def test_big_endian(encoding: str, padded: bool) -> None:
    image = sample(encoding, 4, 5, seed=3)
    big = image.astype(image.dtype.newbyteorder(">"))
    info = encoding_info(encoding)
    step = 5 * info.pixel_bytes + (2 * info.dtype.itemsize if padded else 0)
    fields = encode_image(big, encoding, step=step)
    assert fields.is_bigendian == 1
    first_row = np.frombuffer(fields.data[: 5 * info.pixel_bytes], big.dtype)
    np.testing.assert_array_equal(first_row, big[0].reshape(-1))  # really big-endian bytes
    decoded = decode_image(as_msg(fields))
    assert decoded.dtype == info.dtype and decoded.dtype.isnative
    assert decoded.flags.writeable  # byte swapping makes a new array
    np.testing.assert_array_equal(decoded, image)


def test_hand_built_big_endian_mono16() -> None:
    msg = SimpleNamespace(height=2, width=2, encoding="mono16", is_bigendian=1, step=6,
                          data=bytes([0x01, 0x02, 0xAA, 0xBB, 0, 0, 0xFF, 0x00, 0x00, 0x01, 0, 0]))
    np.testing.assert_array_equal(decode_image(msg), [[0x0102, 0xAABB], [0xFF00, 0x0001]])


def test_byte_order_flag_is_ignored_for_8bit_data() -> None:
    fields = encode_image(sample("rgb8", 2, 2), "rgb8")
    msg = SimpleNamespace(**{**dataclasses.asdict(fields), "is_bigendian": 1})
    np.testing.assert_array_equal(decode_image(msg), sample("rgb8", 2, 2))


# ------------------------------------------------------------------------------- errors



@pytest.mark.parametrize(("changes", "message"), [
    ({"encoding": "nv21"}, r"unsupported image encoding 'nv21'; supported: mono8, rgb8, bgr8"),
    ({"encoding": "RGB8"}, r"unsupported image encoding 'RGB8'"),
    ({"encoding": "8UC0"}, r"unsupported image encoding '8UC0'"),
    ({"encoding": 8}, r"encoding must be a string"),
    ({"step": 11}, r"step 11 is smaller than width \* bytes-per-pixel = 4 \* 3 = 12 for "
                   r"encoding 'rgb8'"),
    ({"data": bytes(35)}, r"data has 35 bytes, expected height \* step = 3 \* 12 = 36"),
    ({"data": b""}, r"data has 0 bytes, expected"),
    ({"width": 0}, r"image is empty: width 0 x height 3"),
    ({"height": 0}, r"image is empty: width 4 x height 0"),
    ({"height": -1}, r"height must not be negative, got -1"),
    ({"width": 2.5}, r"width must be an integer, got float 2.5"),
    ({"step": "12"}, r"step must be an integer, got str 12"),
    ({"data": "abc"}, r"data must be bytes-like or a uint8 sequence, not str"),
    ({"data": [1, 300]}, r"data values must be in 0..255"),
    ({"data": np.zeros(36, np.int32)}, r"data must hold uint8 values, got a int32 array"),
    ({"data": array.array("H", [0] * 36)}, r"typecode 'H'"),
])
def test_decode_errors(changes: dict, message: str) -> None:
    with pytest.raises(ImageCodecError, match=message):
        decode_image(good_msg(**changes))
    with pytest.raises(ImageCodecError, match=message):
        to_rgb8(good_msg(**changes))


def test_step_must_be_a_multiple_of_the_element_size() -> None:
    msg = SimpleNamespace(height=2, width=2, encoding="mono16", is_bigendian=0, step=5,
                          data=bytes(10))
    with pytest.raises(ImageCodecError, match=r"step 5 is not a multiple of the 2-byte element"):
        decode_image(msg)


def test_missing_field() -> None:
    msg = SimpleNamespace(height=1, width=1, encoding="mono8", is_bigendian=0, data=b"\0")
    with pytest.raises(ImageCodecError, match=r"message has no 'step' field"):
        decode_image(msg)


def test_max_pixels() -> None:
    msg = good_msg()
    assert decode_image(msg, max_pixels=12).shape == (3, 4, 3)
    with pytest.raises(ImageCodecError, match=r"image of 4x3 = 12 pixels exceeds max_pixels=11"):
        decode_image(msg, max_pixels=11)
    with pytest.raises(ImageCodecError, match=r"exceeds max_pixels=11"):
        to_rgb8(msg, max_pixels=11)
    with pytest.raises(ImageCodecError, match=r"max_pixels must be an integer, got '10'"):
        decode_image(msg, max_pixels="10")  # type: ignore[arg-type]


def test_codec_error_is_a_value_error() -> None:
    assert issubclass(ImageCodecError, ValueError)


@pytest.mark.parametrize(("image", "encoding", "kwargs", "message"), [
    (np.zeros((2, 3), np.uint8), "rgb8", {},
     r"encoding 'rgb8' needs a uint8 array with 3 channel\(s\), got uint8 with shape \(2, 3\)"),
    (np.zeros((2, 3, 3), np.uint16), "rgb8", {}, r"needs a uint8 array"),
    (np.zeros((2, 3), np.float64), "32FC1", {}, r"needs a float32 array"),
    (np.zeros((2, 3), bool), "passthrough", {}, r"dtype bool have no OpenCV type encoding"),
    (np.zeros((2, 3), np.int64), "passthrough", {}, r"dtype int64 have no OpenCV type"),
    (np.zeros(6, np.uint8), "mono8", {}, r"expected an HxW or HxWxC array, got shape \(6,\)"),
    (np.zeros((0, 3), np.uint8), "mono8", {}, r"image is empty: width 3 x height 0"),
    ([[1, 2]], "mono8", {}, r"expected a numpy array, got list"),
    (np.zeros((2, 3), np.uint8), "nv21", {}, r"unsupported image encoding 'nv21'"),
    (np.zeros((2, 3), np.uint8), "mono8", {"step": 2}, r"step 2 must be >= the row size 3"),
    (np.zeros((2, 3), np.uint16), "mono16", {"step": 7}, r"multiple of 2"),
    (np.zeros((2, 3), np.uint8), "mono8", {"step": 4.0}, r"step must be an integer"),
    (np.zeros((2, 3), np.uint8), "mono8", {"step": 1 << 62}, r"cannot allocate 2 rows"),
])
def test_encode_errors(image: object, encoding: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ImageCodecError, match=message):
        encode_image(image, encoding, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- to_rgb8



def test_rgb8_is_returned_as_a_view_of_the_message() -> None:
    image = sample("rgb8", 4, 6)
    fields = encode_image(image, "rgb8", step=6 * 3 + 2)
    data = array.array("B", fields.data)  # what rclpy hands us
    msg = SimpleNamespace(**{**dataclasses.asdict(fields), "data": data})
    out = to_rgb8(msg)
    assert np.shares_memory(out, np.frombuffer(data, np.uint8)) and not out.flags.writeable
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize(("encoding", "order"), [
    ("rgb8", [0, 1, 2]), ("bgr8", [2, 1, 0]), ("rgba8", [0, 1, 2]), ("bgra8", [2, 1, 0]),
])
@pytest.mark.parametrize("padded", [False, True], ids=["tight", "padded"])
def test_colour_orders(encoding: str, order: list[int], padded: bool) -> None:
    image = sample(encoding, 4, 5)
    step = 5 * image.shape[2] + 4 if padded else None
    np.testing.assert_array_equal(rgb8_of(image, encoding, step), image[..., order])


@pytest.mark.parametrize("encoding", ["mono8", "8UC1", "8U"])
def test_mono8_is_replicated(encoding: str) -> None:
    image = sample("mono8", 3, 4)
    np.testing.assert_array_equal(rgb8_of(image, encoding), np.repeat(image[..., None], 3, -1))


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_16bit_scaled_like_cv_bridge(encoding: str) -> None:
    every = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    expected = ((every.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(v * 255/65535)
    out = rgb8_of(every, encoding, step=256 * 2 + 6)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)


@pytest.mark.parametrize(("encoding", "order"), [
    ("rgb16", [0, 1, 2]), ("bgr16", [2, 1, 0]), ("rgba16", [0, 1, 2]), ("bgra16", [2, 1, 0]),
])
def test_16bit_colour(encoding: str, order: list[int]) -> None:
    image = sample(encoding, 3, 4)
    expected = ((image[..., order].astype(np.uint32) + 128) // 257).astype(np.uint8)
    np.testing.assert_array_equal(rgb8_of(image, encoding), expected)


@pytest.mark.parametrize("encoding", ["32FC1", "64FC1", "32F"])
def test_float_is_clipped_unit_range(encoding: str) -> None:
    dtype = encoding_info(encoding).dtype
    values = np.array([[-1.0, 0.0, 0.5, 1.0, 2.0, np.nan, np.inf, -np.inf, 0.2]], dtype)
    out = rgb8_of(values, encoding)
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 128, 255, 255, 0, 255, 0, 51])
    assert (out == out[..., :1]).all()


def uyvy_from_rgb(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY)


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy"])
def test_uyvy(encoding: str) -> None:
    rgb = smooth_rgb(8, 16)
    packed = uyvy_from_rgb(rgb)
    out = rgb8_of(packed, encoding, step=16 * 2 + 8)
    np.testing.assert_array_equal(out, cv2.cvtColor(packed, cv2.COLOR_YUV2RGB_UYVY))
    assert np.abs(out.astype(int) - rgb).mean() < 4  # chroma subsampling only


@pytest.mark.parametrize("encoding", ["yuv422_yuy2", "yuyv"])
def test_yuyv_is_uyvy_with_swapped_bytes(encoding: str) -> None:
    rgb = smooth_rgb(8, 16)
    uyvy = uyvy_from_rgb(rgb)
    yuyv = uyvy.reshape(8, 8, 4)[..., [1, 0, 3, 2]].reshape(8, 16, 2)  # U Y V Y -> Y U Y V
    np.testing.assert_array_equal(rgb8_of(yuyv, encoding), rgb8_of(uyvy, "uyvy"))


def test_yuv422_needs_even_width_for_colour() -> None:
    odd = np.zeros((2, 3, 2), np.uint8)
    assert decode_image(as_msg(encode_image(odd, "uyvy"))).shape == (2, 3, 2)  # passthrough ok
    with pytest.raises(ImageCodecError, match=r"'uyvy' needs an even width, got 3"):
        to_rgb8(odd, "uyvy")


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_patterns(pattern: str, bits: int) -> None:
    colour = {"r": 200, "g": 100, "b": 30}
    scale = 257 if bits == 16 else 1
    mosaic = np.zeros((8, 8), np.uint16 if bits == 16 else np.uint8)
    for k, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        mosaic[dy::2, dx::2] = colour[pattern[k]] * scale
    out = rgb8_of(mosaic, f"bayer_{pattern}{bits}")
    np.testing.assert_array_equal(out[2:-2, 2:-2], np.broadcast_to([200, 100, 30], (4, 4, 3)))


def test_to_rgb8_from_array() -> None:
    image = sample("bgr8", 3, 4)
    np.testing.assert_array_equal(to_rgb8(image, "bgr8"), image[..., ::-1])
    big = sample("mono16", 3, 4).astype(">u2")
    expected = ((big.astype(np.uint32) + 128) // 257).astype(np.uint8)
    np.testing.assert_array_equal(to_rgb8(big, "mono16")[..., 1], expected)


@pytest.mark.parametrize(("args", "message"), [
    ((sample("8UC3"), "8UC3"), r"cannot convert '8UC3' to rgb8"),
    ((sample("8SC1"), "8SC1"), r"cannot convert '8SC1' to rgb8"),
    ((sample("32SC1"), "32SC1"), r"cannot convert '32SC1' to rgb8"),
    ((sample("rgb8"),), r"to_rgb8 needs the encoding of an array"),
    ((sample("rgb8"), "mono8"), r"encoding 'mono8' needs a uint8 array with 1 channel"),
    ((good_msg(), "rgb8"), r"pass encoding only with an array"),
])
def test_to_rgb8_errors(args: tuple, message: str) -> None:
    with pytest.raises(ImageCodecError, match=message):
        to_rgb8(*args)


# -------------------------------------------------------------------------- fill_image_msg


def test_fill_plain_object() -> None:
    fields = encode_image(sample("mono8", 2, 3), "mono8")
    msg = fill_image_msg(SimpleNamespace(), fields)
    assert dataclasses.asdict(fields) == vars(msg)
    with pytest.raises(ImageCodecError, match=r"expected ImageFields or CompressedImageFields"):
        fill_image_msg(msg, {"height": 1})  # type: ignore[arg-type]


def test_rclpy_image_round_trip() -> None:
    pytest.importorskip("rclpy", reason="rclpy is not installed")
    msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs is not installed")
    from rclpy.serialization import deserialize_message, serialize_message

    cases = [
        (sample("rgb8", 6, 10), "rgb8", None),
        (sample("bgr8", 6, 10), "bgr8", 10 * 3 + 2),
        (sample("mono16", 4, 5).astype(">u2"), "mono16", 5 * 2 + 4),
        (sample("32FC1", 4, 5), "32FC1", None),
    ]
    for image, encoding, step in cases:
        msg = fill_image_msg(msgs.Image(), encode_image(image, encoding, step=step))
        assert isinstance(msg.data, array.array)
        received = deserialize_message(serialize_message(msg), msgs.Image)  # as from DDS
        assert received.encoding == encoding and received.step == msg.step
        np.testing.assert_array_equal(decode_image(received), image)
        np.testing.assert_array_equal(to_rgb8(received), to_rgb8(image, encoding))

    compressed = fill_image_msg(msgs.CompressedImage(),
                                encode_compressed(smooth_rgb(), "rgb8", "png"))
    received = deserialize_message(serialize_message(compressed), msgs.CompressedImage)
    assert received.format == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_to_rgb8(received), smooth_rgb())


def test_rosbags_image_round_trip() -> None:
    typesys = pytest.importorskip("rosbags.typesys", reason="rosbags is not installed")
    store = typesys.get_typestore(typesys.Stores.ROS2_KILTED)
    image_type = store.types["sensor_msgs/msg/Image"]
    header_type = store.types["std_msgs/msg/Header"]
    time_type = store.types["builtin_interfaces/msg/Time"]
    msg = image_type(header=header_type(stamp=time_type(sec=1, nanosec=2), frame_id="cam"),
                     height=0, width=0, encoding="", is_bigendian=0, step=0,
                     data=np.empty(0, np.uint8))
    image = sample("rgb8", 6, 10)
    fill_image_msg(msg, encode_image(image, "rgb8", step=32))
    assert isinstance(msg.data, np.ndarray) and msg.data.flags.writeable
    raw = store.serialize_cdr(msg, image_type.__msgtype__)
    received = store.deserialize_cdr(raw, image_type.__msgtype__)
    np.testing.assert_array_equal(to_rgb8(received), image)


# ------------------------------------------------------------------------------- cv_bridge


def _cv_bridge() -> object:
    try:
        from cv_bridge import CvBridge
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable here"
        pytest.skip(f"cv_bridge is not importable ({type(exc).__name__}: {exc}); it needs a real "
                    "ROS 2 install and is not on PyPI for ROS 2")
    return CvBridge()


def test_matches_cv_bridge() -> None:
    bridge = _cv_bridge()
    msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs is not installed")
    compared = []
    for encoding in ALL:
        image = sample(encoding, 6, 8)
        info = encoding_info(encoding)
        # cv_bridge's Python decoder needs steps that are a multiple of the pixel size
        msg = fill_image_msg(msgs.Image(),
                             encode_image(image, encoding, step=(8 + 2) * info.pixel_bytes))
        try:
            theirs = bridge.imgmsg_to_cv2(msg, "passthrough")
        except Exception:  # noqa: BLE001 - an encoding this cv_bridge does not know
            continue
        compared.append(encoding)
        np.testing.assert_array_equal(decode_image(msg), theirs)
        theirs_msg = bridge.cv2_to_imgmsg(image, encoding)
        ours = encode_image(image, encoding)
        assert (theirs_msg.height, theirs_msg.width, theirs_msg.encoding, theirs_msg.step,
                bytes(theirs_msg.data)) == (ours.height, ours.width, ours.encoding, ours.step,
                                            ours.data)
        if info.kind != "type":
            try:
                theirs_rgb = bridge.imgmsg_to_cv2(msg, "rgb8")
            except Exception:  # noqa: BLE001 - a conversion this cv_bridge does not offer
                continue
            np.testing.assert_array_equal(to_rgb8(msg), theirs_rgb)
    assert {"rgb8", "bgr8", "mono8", "mono16", "16UC1", "32FC1"} <= set(compared)


