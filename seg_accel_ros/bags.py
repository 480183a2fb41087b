"""Camera images in rosbag2 files (sqlite3 and mcap), read and written with ``rosbags``.

``ros2 bag`` needs a ROS install; the pure-Python ``rosbags`` package does not, so replay,
conversion and evaluation go through this module. It imports no rclpy: messages come back as
``rosbags`` objects (which :mod:`seg_accel_ros.image_codec` decodes) or as the stored CDR bytes
(which rclpy publishes unchanged).

* :class:`BagReader` opens a bag folder (``metadata.yaml`` plus storage files), or a single
  ``.mcap`` / ``.db3`` file, or a folder holding exactly one such file without metadata; lists
  its topics and iterates image messages in time order, from a start offset.
* :class:`BagWriter` creates a new bag (``mcap`` or ``sqlite3``) of Image / CompressedImage
  messages from frames, or of raw CDR bytes recorded elsewhere.

Every failure caused by the path or the file's contents raises :class:`BagError` (a
``ValueError``); a missing path raises :class:`BagNotFoundError`, which is also a
``FileNotFoundError``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from seg_accel_ros import image_codec

__all__ = [
    "COMPRESSED_FORMATS",
    "COMPRESSED_TYPE",
    "FRAME_ENCODINGS",
    "IMAGE_TYPE",
    "IMAGE_TYPES",
    "RAW_ENCODINGS",
    "STORAGES",
    "BagError",
    "BagFrame",
    "BagNotFoundError",
    "BagReader",
    "BagWriter",
    "RawMessage",
    "TopicInfo",
    "encode_frame",
    "list_topics",
    "read_images",
    "topic_for_encoding",
    "typestore",
    "write_frames",
]

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
STORAGES = ("mcap", "sqlite3")
RAW_ENCODINGS = ("rgb8", "bgr8", "mono8", "mono16", "rgba8", "bgra8")
COMPRESSED_FORMATS = ("jpeg", "png")
FRAME_ENCODINGS = RAW_ENCODINGS + COMPRESSED_FORMATS

_STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
_PLUGINS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
_TOPIC_RE = re.compile(r"(/[A-Za-z_][A-Za-z0-9_]*)+")
_MAX_TIME_NS = 2**63 - 1
_FROM_RGB = {"bgr8": cv2.COLOR_RGB2BGR, "mono8": cv2.COLOR_RGB2GRAY,
             "rgba8": cv2.COLOR_RGB2RGBA, "bgra8": cv2.COLOR_RGB2BGRA}


class BagError(ValueError):
    """A bag path or bag content that cannot be read or written; says why."""


class BagNotFoundError(BagError, FileNotFoundError):
    """The bag path does not exist."""


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: name, message type ('' when several types share it), count."""

    name: str
    msgtype: str
    count: int

    @property
    def is_image(self) -> bool:
        """Whether the topic carries sensor_msgs/Image or sensor_msgs/CompressedImage."""
        return self.msgtype in IMAGE_TYPES


@dataclass(frozen=True)
class RawMessage:
    """A stored message as CDR bytes (what rclpy publishes unchanged), with its bag time."""

    topic: str
    msgtype: str
    time_ns: int
    data: bytes


@dataclass(frozen=True)
class BagFrame:
    """A decoded image message: bag time, header stamp and frame id, HxWx3 uint8 RGB."""

    topic: str
    time_ns: int
    stamp_ns: int
    frame_id: str
    rgb: np.ndarray


@lru_cache(maxsize=1)
def typestore() -> Any:
    """rosbags message types of ROS 2 Kilted, to build and (de)serialize messages."""
    return get_typestore(Stores.ROS2_KILTED)


def _normalize_topic(topic: str) -> str:
    if not isinstance(topic, str):
        raise BagError(f"topic must be a string, got {type(topic).__name__}")
    name = topic if topic.startswith("/") else "/" + topic
    if not _TOPIC_RE.fullmatch(name):
        raise BagError(f"invalid topic name {topic[:80]!r}: use /name/with/letters_digits_")
    return name


def _offset_ns(start_offset: float) -> int:
    try:
        seconds = float(start_offset)
    except (TypeError, ValueError):
        raise BagError(f"start offset must be a number of seconds, got {start_offset!r}") from None
    if not seconds >= 0.0 or seconds > 1e9:
        raise BagError(f"start offset must be in 0..1e9 seconds, got {start_offset!r}")
    return round(seconds * 1e9)


# ----------------------------------------------------------------------------- reading


def _resolve_bag(path: str | Path) -> tuple[Path, str | None]:
    """The path rosbags opens and, for single files, the storage named by the suffix."""
    bag = Path(path)
    if not bag.exists():
        raise BagNotFoundError(f"no bag at {bag}")
    if bag.is_dir():
        if (bag / "metadata.yaml").is_file():
            return bag, None
        files = sorted(f for f in bag.iterdir() if f.suffix in _STORAGE_SUFFIXES and f.is_file())
        if len(files) == 1:
            return files[0], _STORAGE_SUFFIXES[files[0].suffix]
        found = f"{len(files)} storage files" if files else "no .mcap or .db3 file"
        raise BagError(f"{bag} is not a rosbag2 folder: no metadata.yaml and {found}")
    storage = _STORAGE_SUFFIXES.get(bag.suffix)
    if storage is None:
        raise BagError(
            f"{bag} is not a rosbag2: expected a bag folder, a .mcap or a .db3 file "
            f"(unknown storage for suffix {bag.suffix!r})"
        )
    return bag, storage


class BagReader:
    """An open rosbag2 (folder or single .mcap / .db3 file); use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        """Open the bag and read its topic list; raises BagError for anything unreadable."""
        self.path = Path(path)
        target, storage = _resolve_bag(self.path)
        try:
            self._reader = Reader(target)
            self._reader.open()
        except Exception as exc:  # rosbags raises many types for corrupt files
            raise BagError(f"cannot open bag {self.path}: {_describe(exc)}") from exc
        try:
            self.storage = storage or _directory_storage(self._reader)
            self.topics = self._read_topics()
            self.message_count = int(self._reader.message_count)
            self.start_ns = int(self._reader.start_time) if self.message_count else 0
            self.end_ns = int(self._reader.end_time) - 1 if self.message_count else 0
        except Exception as exc:
            self.close()
            raise BagError(f"cannot read the index of bag {self.path}: {_describe(exc)}") from exc

    def _read_topics(self) -> list[TopicInfo]:
        return [TopicInfo(name, info.msgtype or "", int(info.msgcount))
                for name, info in sorted(self._reader.topics.items())]

    @property
    def image_topics(self) -> list[TopicInfo]:
        """The topics that carry sensor_msgs/Image or sensor_msgs/CompressedImage."""
        return [t for t in self.topics if t.is_image]

    @property
    def duration_ns(self) -> int:
        """Bag time from the first to the last message."""
        return self.end_ns - self.start_ns

    def select_topics(self, topics: Iterable[str] | None = None) -> list[TopicInfo]:
        """The chosen image topics (default: all of them); BagError for unknown or non-image."""
        images = {t.name: t for t in self.image_topics}
        if not images:
            listing = ", ".join(f"{t.name} [{t.msgtype or 'mixed types'}]" for t in self.topics)
            raise BagError(f"bag {self.path} has no sensor_msgs/Image or CompressedImage topic "
                           f"(topics: {listing or 'none'})")
        if topics is None:
            return list(images.values())
        chosen: list[TopicInfo] = []
        for topic in topics:
            name = _normalize_topic(topic)
            if name not in images:
                raise BagError(f"{name} is not an image topic of bag {self.path}; image topics: "
                               f"{', '.join(images)}")
            if images[name] not in chosen:
                chosen.append(images[name])
        if not chosen:
            raise BagError("no topic chosen")
        return chosen

    def raw_messages(self, topics: Iterable[str] | None = None,
                     start_offset: float = 0.0) -> Iterator[RawMessage]:
        """Stored CDR bytes of the chosen image topics in bag-time order, from an offset (s)."""
        names = {t.name for t in self.select_topics(topics)}
        start = self.start_ns + _offset_ns(start_offset) if self.message_count else None
        reader = self._reader
        if reader is None:
            raise BagError(f"bag {self.path} is closed")
        connections = [c for c in reader.connections if c.topic in names]
        try:
            for conn, time_ns, data in reader.messages(connections, start=start):
                yield RawMessage(conn.topic, conn.msgtype, int(time_ns), bytes(data))
        except Exception as exc:
            raise BagError(f"corrupt bag {self.path}: {_describe(exc)}") from exc

    def messages(self, topics: Iterable[str] | None = None,
                 start_offset: float = 0.0) -> Iterator[tuple[str, int, Any]]:
        """(topic, bag time ns, rosbags message) of the chosen image topics in time order."""
        store = typestore()
        for raw in self.raw_messages(topics, start_offset):
            try:
                msg = store.deserialize_cdr(raw.data, raw.msgtype)
            except Exception as exc:
                raise BagError(f"corrupt {raw.msgtype} message on {raw.topic} at "
                               f"{raw.time_ns} ns in {self.path}: {_describe(exc)}") from exc
            yield raw.topic, raw.time_ns, msg

    def frames(self, topics: Iterable[str] | None = None, start_offset: float = 0.0, *,
               max_pixels: int | None = None) -> Iterator[BagFrame]:
        """The chosen image topics decoded to RGB (raw and JPEG / PNG), in time order."""
        for topic, time_ns, msg in self.messages(topics, start_offset):
            try:
                if hasattr(msg, "format"):
                    rgb = image_codec.compressed_to_rgb8(msg, max_pixels=max_pixels)
                else:
                    rgb = image_codec.to_rgb8(msg, max_pixels=max_pixels)
                stamp = msg.header.stamp
                stamp_ns = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
            except image_codec.ImageCodecError as exc:
                raise BagError(f"undecodable image on {topic} at {time_ns} ns in "
                               f"{self.path}: {exc}") from exc
            yield BagFrame(topic, time_ns, stamp_ns, str(msg.header.frame_id), rgb)

    def close(self) -> None:
        """Close the storage files (idempotent)."""
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None and reader.is_open:
            # closing a half-read corrupt file must not mask the real error
            with contextlib.suppress(Exception):
                reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _directory_storage(reader: Any) -> str:
    storages = getattr(reader.storage, "storages", [])
    name = type(storages[0]).__name__ if storages else ""
    return "mcap" if name.startswith("Mcap") else "sqlite3" if name.startswith("Sqlite") else "?"


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "..."


def list_topics(path: str | Path) -> list[TopicInfo]:
    """All topics of a bag with their types and message counts."""
    with BagReader(path) as bag:
        return bag.topics


def read_images(path: str | Path, topics: Iterable[str] | None = None,
                start_offset: float = 0.0) -> Iterator[tuple[str, int, Any]]:
    """(topic, bag time ns, rosbags message) of a bag's image topics; closes the bag at the end."""
    with BagReader(path) as bag:
        yield from bag.messages(topics, start_offset)


# ----------------------------------------------------------------------------- writing


def encode_frame(rgb: np.ndarray, encoding: str, *, jpeg_quality: int = 95
                 ) -> image_codec.ImageFields | image_codec.CompressedImageFields:
    """An RGB frame as Image fields in a camera encoding, or CompressedImage fields (jpeg/png)."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3
            and rgb.shape[2] == 3):
        shape = getattr(rgb, "shape", None)
        raise BagError(f"frames must be HxWx3 uint8 RGB arrays, got {type(rgb).__name__} {shape}")
    try:
        if encoding in COMPRESSED_FORMATS:
            return image_codec.encode_compressed(rgb, "rgb8", encoding, jpeg_quality=jpeg_quality)
        if encoding == "rgb8":
            image = rgb
        elif encoding in _FROM_RGB:
            image = cv2.cvtColor(rgb, _FROM_RGB[encoding])
        elif encoding == "mono16":
            image = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * np.uint16(257)
        else:
            raise BagError(f"unsupported frame encoding {encoding!r}; choose one of "
                           f"{', '.join(FRAME_ENCODINGS)}")
        return image_codec.encode_image(image, encoding)
    except image_codec.ImageCodecError as exc:
        raise BagError(f"cannot encode a frame as {encoding}: {exc}") from exc


class BagWriter:
    """A new rosbag2 folder of image messages; use as a context manager.

    On an error inside the ``with`` block the half-written folder is removed; on Ctrl-C it is
    closed properly so that the frames written so far form a valid bag.
    """

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        """Create the bag folder (which must not exist) with the chosen storage."""
        if storage not in _PLUGINS:
            raise BagError(f"unknown storage {storage!r}; choose one of {', '.join(STORAGES)}")
        self.path = Path(path)
        self.storage = storage
        if self.path.exists() or self.path.is_symlink():
            raise BagError(f"{self.path} exists already; a bag is never overwritten")
        self._types: dict[str, str] = {}
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        try:
            self._writer = Writer(self.path, version=9, storage_plugin=_PLUGINS[storage])
            self._writer.open()
        except Exception as exc:
            raise BagError(f"cannot create bag {self.path}: {_describe(exc)}") from exc
        self._open = True

    def add_topic(self, topic: str, msgtype: str) -> str:
        """Declare a topic and its message type (any type ROS 2 Kilted defines); returns it."""
        name = _normalize_topic(topic)
        known = self._types.get(name)
        if known is not None:
            if known != msgtype:
                raise BagError(f"topic {name} already holds {known}, not {msgtype}")
            return name
        store = typestore()
        if msgtype not in store.types:
            raise BagError(f"unknown message type {msgtype!r}")
        self._check_open()
        try:
            conn = self._writer.add_connection(name, msgtype, typestore=store)
        except Exception as exc:
            raise BagError(f"cannot add topic {name} to {self.path}: {_describe(exc)}") from exc
        self._types[name], self._connections[name], self.counts[name] = msgtype, conn, 0
        return name

    def write_raw(self, topic: str, time_ns: int, data: bytes, msgtype: str | None = None
                  ) -> None:
        """Store CDR bytes as they are (e.g. received by a raw rclpy subscription)."""
        name = _normalize_topic(topic)
        if name not in self._types:
            if msgtype is None:
                raise BagError(f"topic {name} was not added; pass its msgtype")
            self.add_topic(name, msgtype)
        elif msgtype is not None and msgtype != self._types[name]:
            raise BagError(f"topic {name} holds {self._types[name]}, not {msgtype}")
        self._check_open()
        if not isinstance(time_ns, (int, np.integer)) or not 0 <= time_ns <= _MAX_TIME_NS:
            raise BagError(f"bag time must be an integer in 0..2**63-1 ns, got {time_ns!r}")
        try:
            self._writer.write(self._connections[name], int(time_ns), bytes(data))
        except Exception as exc:
            raise BagError(f"cannot write to {self.path}: {_describe(exc)}") from exc
        self.counts[name] += 1

    def write_message(self, topic: str, time_ns: int, msg: Any, msgtype: str) -> None:
        """Serialize a rosbags message object of ``msgtype`` and store it."""
        try:
            data = typestore().serialize_cdr(msg, msgtype)
        except Exception as exc:
            raise BagError(f"cannot serialize a {msgtype}: {_describe(exc)}") from exc
        self.write_raw(topic, time_ns, bytes(data), msgtype)

    def write_frame(self, topic: str, time_ns: int, rgb: np.ndarray, encoding: str = "rgb8", *,
                    frame_id: str = "", stamp_ns: int | None = None, jpeg_quality: int = 95
                    ) -> str:
        """Store an RGB frame as Image (raw encodings) or CompressedImage (jpeg / png).

        The header stamp is the bag time unless ``stamp_ns`` is given; returns the message type.
        """
        fields = encode_frame(rgb, encoding, jpeg_quality=jpeg_quality)
        return self._write_fields(topic, time_ns, fields, frame_id, stamp_ns)

    def write_image(self, topic: str, time_ns: int, image: np.ndarray, encoding: str, *,
                    frame_id: str = "", stamp_ns: int | None = None) -> str:
        """Store an array as it is as a sensor_msgs/Image (e.g. mono8 labels); returns the type.

        The header stamp is the bag time unless ``stamp_ns`` is given.
        """
        try:
            fields = image_codec.encode_image(np.ascontiguousarray(image), encoding)
        except image_codec.ImageCodecError as exc:
            raise BagError(f"cannot encode an image as {encoding}: {exc}") from exc
        return self._write_fields(topic, time_ns, fields, frame_id, stamp_ns)

    def _write_fields(self, topic: str, time_ns: int,
                      fields: image_codec.ImageFields | image_codec.CompressedImageFields,
                      frame_id: str, stamp_ns: int | None) -> str:
        stamp = time_ns if stamp_ns is None else stamp_ns
        if not isinstance(stamp, (int, np.integer)) or not 0 <= stamp < 2**31 * 1_000_000_000:
            raise BagError(f"stamp must be an integer in 0..2**31 s in ns, got {stamp!r}")
        types = typestore().types
        header = types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=int(stamp) // 1_000_000_000,
                                                       nanosec=int(stamp) % 1_000_000_000),
            frame_id=str(frame_id))
        data = np.frombuffer(fields.data, np.uint8)
        if isinstance(fields, image_codec.CompressedImageFields):
            msgtype = COMPRESSED_TYPE
            msg = types[msgtype](header=header, format=fields.format, data=data)
        else:
            msgtype = IMAGE_TYPE
            msg = types[msgtype](header=header, height=fields.height, width=fields.width,
                                 encoding=fields.encoding, is_bigendian=fields.is_bigendian,
                                 step=fields.step, data=data)
        self.write_message(topic, time_ns, msg, msgtype)
        return msgtype

    def _check_open(self) -> None:
        if not self._open:
            raise BagError(f"bag {self.path} is closed")

    def close(self) -> None:
        """Finish the storage file and write metadata.yaml (idempotent)."""
        if not self._open:
            return
        self._open = False
        try:
            self._writer.close()
        except Exception as exc:
            raise BagError(f"cannot finish bag {self.path}: {_describe(exc)}") from exc

    def abort(self) -> None:
        """Stop writing and remove the half-written bag folder (this writer created it)."""
        if self._open:
            self._open = False
            with contextlib.suppress(Exception):  # the folder goes below in any state
                self._writer.abort()
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
        else:
            self.abort()


def topic_for_encoding(topic: str, encoding: str) -> str:
    """Where frames in ``encoding`` go: jpeg / png on ``<topic>/compressed``, as image_transport."""
    name = _normalize_topic(topic)
    if encoding in COMPRESSED_FORMATS and not name.endswith("/compressed"):
        name += "/compressed"
    return name


def write_frames(path: str | Path, frames: Iterable[np.ndarray], stamps_ns: Iterable[int], *,
                 topic: str = "/camera/image_raw", encoding: str = "rgb8",
                 storage: str = "mcap", frame_id: str = "camera", jpeg_quality: int = 95) -> int:
    """Write RGB frames with their bag times (= header stamps) as a new bag; returns the count.

    jpeg / png frames go to ``<topic>/compressed`` as image_transport names it.
    """
    topic = topic_for_encoding(topic, encoding)
    count = 0
    with BagWriter(path, storage) as bag:
        for rgb, stamp in zip(frames, stamps_ns, strict=False):
            bag.write_frame(topic, stamp, rgb, encoding, frame_id=frame_id,
                            jpeg_quality=jpeg_quality)
            count += 1
    return count
