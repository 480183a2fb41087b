"""sensor_msgs/CompressedImage as compressed_image_transport writes it: decoding to an array
and its encoding, to RGB for the engine, and encoding to JPEG or PNG."""

from __future__ import annotations

import cv2
import numpy as np

from seg_accel_ros.image_codec.encodings import (
    COLOUR_KINDS,
    U8,
    U16,
    EncodingInfo,
    ImageCodecError,
    encoding_info,
)
from seg_accel_ros.image_codec.messages import (
    CompressedImageFields,
    CompressedImageMsgLike,
    as_int,
    bytes_array,
    check_size,
    message_field,
)
from seg_accel_ros.image_codec.raw import check_array, rgb8_from_array, scale16

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
    fmt = message_field(msg, "format")
    if not isinstance(fmt, str):
        raise ImageCodecError(f"format must be a string, got {type(fmt).__name__}")
    declared, bgr_order = _parse_format(fmt)
    buf = bytes_array(message_field(msg, "data"))
    if buf.size == 0:
        raise ImageCodecError(f"compressed image (format {fmt[:64]!r}) has no data")
    raw = buf.tobytes()
    if max_pixels is not None:
        size = _peek_size(raw)
        if size is not None:
            check_size(max(size[0], 1), max(size[1], 1), max_pixels)
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
    check_size(image.shape[0], image.shape[1], max_pixels)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if (declared is not None and declared.kind not in COLOUR_KINDS
            and declared.channels == channels and declared.dtype == image.dtype):
        return image, declared.name
    bits = {U8: "8", U16: "16"}.get(image.dtype)
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
    return rgb8_from_array(image, encoding_info(encoding))


def encode_compressed(image: np.ndarray, encoding: str, fmt: str = "jpeg", *,
                      jpeg_quality: int = 95, png_level: int = 3) -> CompressedImageFields:
    """Array -> CompressedImage fields with compressed_image_transport's format string.

    JPEG takes colour (stored as bgr8) and mono (stored as mono8); PNG takes colour (stored as
    bgr/bgra at the source depth) and any 8/16-bit unsigned 1/3/4-channel encoding as is.
    """
    info = encoding_info(encoding)
    image = check_array(image, info)
    check_size(image.shape[0], image.shape[1], None)
    codec = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}.get(str(fmt).lower())
    if codec is None:
        raise ImageCodecError(f"unsupported compression format {fmt!r}; use 'jpeg' or 'png'")
    jpeg_quality = as_int(jpeg_quality, "jpeg_quality")
    png_level = as_int(png_level, "png_level")
    if not 0 <= jpeg_quality <= 100 or not 0 <= png_level <= 9:
        raise ImageCodecError(f"jpeg_quality {jpeg_quality} must be in 0..100, "
                              f"png_level {png_level} in 0..9")
    bits = "8" if info.dtype == U8 else "16"
    target = ""
    try:
        if info.kind in COLOUR_KINDS:
            keep_alpha = codec == "png" and info.kind.endswith("a")
            target = "bgra" if keep_alpha else "bgr"
            code = {
                ("rgb", False): cv2.COLOR_RGB2BGR, ("rgba", False): cv2.COLOR_RGBA2BGR,
                ("bgra", False): cv2.COLOR_BGRA2BGR, ("rgba", True): cv2.COLOR_RGBA2BGRA,
            }.get((info.kind, keep_alpha))
            out = image if code is None else cv2.cvtColor(image, code)
            if codec == "jpeg" and info.dtype == U16:
                out, bits = scale16(out), "8"
            target += bits
        elif codec == "jpeg" and info.kind == "mono":
            out, target = (image if info.dtype == U8 else scale16(image)), "mono8"
        elif (codec == "png" and info.dtype in (U8, U16) and info.channels in (1, 3, 4)
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
