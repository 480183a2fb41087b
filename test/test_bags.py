"""Image rosbag2 files: round trips for both storages, time order, offsets, and errors (a fuzz
of corrupted bag bytes included: only BagError may come out)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seg_accel_ros import bags
from seg_accel_ros.frame_sources import generated_frames

START = 1_700_000_000 * 10**9
PERIOD = 10**9 // 20
FRAMES = list(generated_frames((48, 32), count=6, speed=5))
STAMPS = [START + i * PERIOD for i in range(len(FRAMES))]


def expected_pixels(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """What to_rgb8 must give back for a frame stored in ``encoding`` (lossless ones)."""
    if encoding.startswith("mono"):
        return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return rgb


@pytest.mark.parametrize("storage", bags.STORAGES)
@pytest.mark.parametrize("encoding", bags.FRAME_ENCODINGS)
def test_frames_round_trip(tmp_path, storage, encoding):
    path = tmp_path / "bag"
    count = bags.write_frames(path, FRAMES, STAMPS, encoding=encoding, storage=storage,
                              frame_id="cam_front")
    assert count == len(FRAMES)
    compressed = encoding in bags.COMPRESSED_FORMATS
    topic = "/camera/image_raw" + ("/compressed" if compressed else "")
    with bags.BagReader(path) as bag:
        assert bag.storage == storage
        msgtype = bags.COMPRESSED_TYPE if compressed else bags.IMAGE_TYPE
        assert bag.topics == [bags.TopicInfo(topic, msgtype, len(FRAMES))]
        assert (bag.start_ns, bag.end_ns, bag.message_count) == (STAMPS[0], STAMPS[-1], 6)
        frames = list(bag.frames())
    assert [f.time_ns for f in frames] == STAMPS
    assert [f.stamp_ns for f in frames] == STAMPS
    assert {f.frame_id for f in frames} == {"cam_front"} and {f.topic for f in frames} == {topic}
    for original, frame in zip(FRAMES, frames, strict=True):
        assert frame.rgb.shape == original.shape and frame.rgb.dtype == np.uint8
        if encoding == "jpeg":
            error = np.abs(frame.rgb.astype(int) - original.astype(int)).mean()
            assert error < 6.0
        else:
            np.testing.assert_array_equal(frame.rgb, expected_pixels(original, encoding))


@pytest.mark.parametrize("storage", bags.STORAGES)
def test_messages_keep_the_stored_fields_and_raw_bytes_deserialize(tmp_path, storage):
    path = tmp_path / "bag"
    bags.write_frames(path, FRAMES[:2], STAMPS[:2], encoding="bgr8", storage=storage)
    with bags.BagReader(path) as bag:
        raw = list(bag.raw_messages())
        msgs = list(bag.messages())
    assert all(isinstance(r.data, bytes) and r.msgtype == bags.IMAGE_TYPE for r in raw)
    topic, time_ns, msg = msgs[0]
    assert (topic, time_ns) == ("/camera/image_raw", STAMPS[0])
    assert (msg.height, msg.width, msg.encoding, msg.step) == (32, 48, "bgr8", 48 * 3)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == divmod(STAMPS[0], 10**9)
    np.testing.assert_array_equal(msg.data.reshape(32, 48, 3)[..., ::-1], FRAMES[0])


@pytest.mark.parametrize("storage", bags.STORAGES)
def test_two_topics_come_back_in_time_order_with_offset_and_topic_choice(tmp_path, storage):
    path = tmp_path / "bag"
    with bags.BagWriter(path, storage) as bag:
        # written out of time order on purpose: readers must sort by bag time
        for i in (3, 0, 2, 1):
            bag.write_frame("/left/image", START + i * PERIOD, FRAMES[i])
            bag.write_frame("right/image/compressed", START + i * PERIOD + 1000, FRAMES[i],
                            "png")
        bag.write_message("/chatter", START, _string("hello"), "std_msgs/msg/String")
    with bags.BagReader(path) as bag:
        assert [(t.name, t.count, t.is_image) for t in bag.topics] == [
            ("/chatter", 1, False), ("/left/image", 4, True),
            ("/right/image/compressed", 4, True)]
        assert [t.name for t in bag.image_topics] == ["/left/image", "/right/image/compressed"]
        times = [m.time_ns for m in bag.raw_messages()]
        assert times == sorted(times) and len(times) == 8
        offset = [(m.topic, m.time_ns) for m in bag.raw_messages(start_offset=2 * PERIOD / 1e9)]
        assert offset == [("/left/image", START + 2 * PERIOD),
                          ("/right/image/compressed", START + 2 * PERIOD + 1000),
                          ("/left/image", START + 3 * PERIOD),
                          ("/right/image/compressed", START + 3 * PERIOD + 1000)]
        right = [f.time_ns for f in bag.frames(["/right/image/compressed"])]
        assert right == [START + i * PERIOD + 1000 for i in range(4)]
        assert list(bag.raw_messages(start_offset=60.0)) == []
        with pytest.raises(bags.BagError, match="not an image topic"):
            list(bag.raw_messages(["/chatter"]))
        with pytest.raises(bags.BagError, match="not an image topic"):
            list(bag.raw_messages(["/nope"]))
        with pytest.raises(bags.BagError, match="start offset"):
            list(bag.raw_messages(start_offset=-1.0))


def _string(text: str):
    return bags.typestore().types["std_msgs/msg/String"](data=text)


@pytest.mark.parametrize("storage, suffix", [("mcap", ".mcap"), ("sqlite3", ".db3")])
def test_a_storage_file_opens_alone_and_in_a_folder_without_metadata(tmp_path, storage, suffix):
    path = tmp_path / "bag"
    bags.write_frames(path, FRAMES[:3], STAMPS[:3], storage=storage)
    (file,) = path.glob("*" + suffix)
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(file, loose / file.name)
    for target in (file, loose):
        with bags.BagReader(target) as bag:
            assert bag.storage == storage
            assert [f.time_ns for f in bag.frames()] == STAMPS[:3]
    assert bags.list_topics(file)[0].count == 3
    with pytest.raises(bags.BagError, match="is closed"):
        next(bag.raw_messages())
    assert [t for _, t, _ in bags.read_images(path)] == STAMPS[:3]


def test_compressed_frames_go_to_the_image_transport_topic():
    assert bags.topic_for_encoding("camera/image_raw", "rgb8") == "/camera/image_raw"
    assert bags.topic_for_encoding("/cam/image", "jpeg") == "/cam/image/compressed"
    assert bags.topic_for_encoding("/cam/image/compressed", "png") == "/cam/image/compressed"
    with pytest.raises(bags.BagError, match="invalid topic name"):
        bags.topic_for_encoding("/cam//image", "png")


def test_missing_and_non_bag_paths_raise_bag_errors(tmp_path):
    with pytest.raises(bags.BagNotFoundError, match="no bag at") as missing:
        bags.BagReader(tmp_path / "missing")
    assert isinstance(missing.value, FileNotFoundError) and isinstance(missing.value, ValueError)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(bags.BagError, match="not a rosbag2 folder"):
        bags.BagReader(empty)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(bags.BagError, match="unknown storage for suffix '.txt'"):
        bags.BagReader(tmp_path / "notes.txt")
    garbage = tmp_path / "garbage.db3"
    garbage.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    with pytest.raises(bags.BagError, match="cannot open bag"):
        bags.BagReader(garbage)
    (tmp_path / "garbage.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 100)
    with pytest.raises(bags.BagError, match="cannot open bag"):
        bags.BagReader(tmp_path / "garbage.mcap")


def test_unknown_storage_in_metadata_and_missing_storage_file(tmp_path):
    path = tmp_path / "bag"
    bags.write_frames(path, FRAMES[:2], STAMPS[:2], storage="mcap")
    meta = path / "metadata.yaml"
    meta.write_text(meta.read_text().replace("storage_identifier: mcap",
                                             "storage_identifier: rosbag_v3"))
    with pytest.raises(bags.BagError, match="rosbag_v3"):
        bags.BagReader(path)
    other = tmp_path / "other"
    bags.write_frames(other, FRAMES[:2], STAMPS[:2], storage="sqlite3")
    (other / "other.db3").unlink()
    with pytest.raises(bags.BagError, match="missing"):
        bags.BagReader(other)


def test_a_bag_without_image_topics_is_refused_when_images_are_asked_for(tmp_path):
    path = tmp_path / "chat"
    with bags.BagWriter(path, "sqlite3") as bag:
        bag.write_message("/chatter", START, _string("hi"), "std_msgs/msg/String")
    with bags.BagReader(path) as bag:
        assert bag.topics == [bags.TopicInfo("/chatter", "std_msgs/msg/String", 1)]
        with pytest.raises(bags.BagError, match=r"no sensor_msgs/Image.*/chatter \[std_msgs"):
            list(bag.frames())


def test_writer_refuses_bad_requests_and_removes_a_failed_bag(tmp_path):
    with pytest.raises(bags.BagError, match="unknown storage 'rosbag1'"):
        bags.BagWriter(tmp_path / "a", "rosbag1")
    (tmp_path / "exists").mkdir()
    with pytest.raises(bags.BagError, match="exists already"):
        bags.BagWriter(tmp_path / "exists")
    with pytest.raises(bags.BagError, match="unsupported frame encoding 'yuv422'"):
        bags.write_frames(tmp_path / "b", FRAMES, STAMPS, encoding="yuv422")
    assert not (tmp_path / "b").exists()
    with bags.BagWriter(tmp_path / "c") as bag:
        with pytest.raises(bags.BagError, match="HxWx3 uint8"):
            bag.write_frame("/img", START, FRAMES[0].astype(np.float32))
        with pytest.raises(bags.BagError, match="invalid topic name"):
            bag.write_frame("/bad topic", START, FRAMES[0])
        with pytest.raises(bags.BagError, match="stamp must be"):
            bag.write_frame("/img", -5, FRAMES[0])
        with pytest.raises(bags.BagError, match="bag time must be"):
            bag.write_raw("/img", -5, b"\x00\x01\x00\x00", bags.IMAGE_TYPE)
        bag.write_frame("/img", START, FRAMES[0])
        with pytest.raises(bags.BagError, match="holds sensor_msgs/msg/Image, not"):
            bag.write_frame("/img", START, FRAMES[0], "jpeg")
        with pytest.raises(bags.BagError, match="unknown message type"):
            bag.add_topic("/x", "my_msgs/msg/Nothing")
    assert bags.list_topics(tmp_path / "c")[0].count == 1
    with pytest.raises(RuntimeError), bags.BagWriter(tmp_path / "d") as bag:
        bag.write_frame("/img", START, FRAMES[0])
        raise RuntimeError("the caller failed")
    assert not (tmp_path / "d").exists()


# ----------------------------------------------------------------------------- fuzz


def _make_source(storage: str) -> tuple[bytes, bytes, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "src"
        with bags.BagWriter(path, storage) as bag:
            for i in range(3):
                bag.write_frame("/cam/image_raw", STAMPS[i], FRAMES[i], "rgb8")
                bag.write_frame("/cam/image_raw/compressed", STAMPS[i] + 1, FRAMES[i], "png")
        (file,) = [p for p in path.iterdir() if p.name != "metadata.yaml"]
        return file.read_bytes(), (path / "metadata.yaml").read_bytes(), file.name


SOURCES = {storage: _make_source(storage) for storage in bags.STORAGES}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Subnormals off: torch.set_flush_denormal(True), set by inference code earlier in the same test
# process, makes hypothesis refuse to generate them.
POSITION = st.floats(0.0, 1.0, exclude_max=True, allow_subnormal=False)
EDITS = st.lists(st.tuples(st.sampled_from(["set", "zero", "truncate", "insert"]),
                           POSITION, st.integers(0, 255), st.integers(1, 64)),
                 min_size=1, max_size=6)


def _corrupt(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, where, value, length in edits:
        i = int(where * len(out)) if out else 0
        if kind == "set" and out:
            out[i] = value
        elif kind == "zero":
            out[i:i + length] = bytes(len(out[i:i + length]))
        elif kind == "truncate":
            del out[i:]
        elif kind == "insert":
            out[i:i] = bytes([value]) * length
    return bytes(out)


def _read_everything(path: Path) -> None:
    with bags.BagReader(path) as bag:
        for _ in bag.frames(max_pixels=10**6):
            pass


@FUZZ
@given(storage=st.sampled_from(bags.STORAGES), edits=EDITS,
       target=st.sampled_from(["storage", "storage", "storage", "metadata"]))
def test_corrupted_bag_bytes_raise_only_bag_errors(storage, edits, target):
    data, meta, name = SOURCES[storage]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bag"
        path.mkdir()
        (path / name).write_bytes(_corrupt(data, edits) if target == "storage" else data)
        (path / "metadata.yaml").write_bytes(_corrupt(meta, edits) if target == "metadata"
                                             else meta)
        with contextlib.suppress(bags.BagError):
            _read_everything(path)
        with contextlib.suppress(bags.BagError):  # the storage file alone, without metadata
            _read_everything(path / name)


def _valid_payloads() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bag"
        path.mkdir()
        data, meta, name = SOURCES["mcap"]
        (path / name).write_bytes(data)
        (path / "metadata.yaml").write_bytes(meta)
        with bags.BagReader(path) as bag:
            return {raw.msgtype: raw.data for raw in bag.raw_messages()}


PAYLOADS = _valid_payloads()
FLIPS = st.lists(st.tuples(POSITION, st.integers(1, 255)), max_size=4)
MAX_EXAMPLES = 60  # each example writes a bag


@settings(FUZZ, max_examples=MAX_EXAMPLES)
@given(storage=st.sampled_from(bags.STORAGES), msgtype=st.sampled_from(bags.IMAGE_TYPES),
       payload=st.one_of(st.binary(max_size=200), st.tuples(POSITION, FLIPS)))
def test_fuzz_random_message_bytes_in_a_valid_bag_raise_only_bag_errors(storage, msgtype,
                                                                        payload):
    """The container is sound; the stored CDR bytes of an image message are random or a real
    message cut short and bit-flipped (height, step, encoding... all lie)."""
    if isinstance(payload, tuple):
        cut, flips = payload
        data = bytearray(PAYLOADS[msgtype][: int(cut * len(PAYLOADS[msgtype])) + 1])
        for where, xor in flips:
            data[int(where * len(data))] ^= xor
        payload = bytes(data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bag"
        with bags.BagWriter(path, storage) as bag:
            bag.write_raw("/cam/image", START, payload, msgtype)
        with contextlib.suppress(bags.BagError):
            _read_everything(path)


@FUZZ
@given(suffix=st.sampled_from([".mcap", ".db3"]), data=st.binary(max_size=400),
       prefix=st.sampled_from([b"", b"\x89MCAP0\r\n", b"SQLite format 3\x00"]),
       with_metadata=st.one_of(st.none(), st.text(max_size=200)))
def test_fuzz_random_bytes_as_a_bag_raise_only_bag_errors(suffix, data, prefix, with_metadata):
    """Files that merely look like a bag: random bytes behind a real magic number, alone or in
    a folder with a random metadata.yaml."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bag"
        folder.mkdir()
        storage_file = folder / f"bag_0{suffix}"
        storage_file.write_bytes(prefix + data)
        if with_metadata is not None:
            (folder / "metadata.yaml").write_text(with_metadata)
        for path in (storage_file, folder):
            with contextlib.suppress(bags.BagError):
                _read_everything(path)
