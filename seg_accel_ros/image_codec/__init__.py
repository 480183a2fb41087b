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

from seg_accel_ros.image_codec.compressed import (
    compressed_to_rgb8,
    decode_compressed,
    encode_compressed,
)
from seg_accel_ros.image_codec.encodings import EncodingInfo, ImageCodecError, encoding_info
from seg_accel_ros.image_codec.messages import (
    CompressedImageFields,
    CompressedImageMsgLike,
    ImageFields,
    ImageMsgLike,
    fill_image_msg,
)
from seg_accel_ros.image_codec.raw import decode_image, encode_image, to_rgb8

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
