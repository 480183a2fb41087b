"""Motion between consecutive frames, and how much each block changed after compensating it.

Motion is dense optical flow (OpenCV's DIS, ultrafast preset) on a grey frame downscaled
``downscale`` times: about a millisecond at 720p / 4 on one CPU core, where block matching in
NumPy costs more and a global model cannot follow a car passing by. The per-block distortion
(DNP) is the mean absolute difference between the current frame and the previous one warped
by that flow: what motion does not explain. It is small where cached features, moved by the
same flow, are still right.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from seg_accel_ros.engine.blocks.reuse import MotionField, nearest_samples
from seg_accel_ros.engine.policy import block_means


class MotionEstimator:
    """Flow from the current frame back to the previous one, on ``downscale``d grey frames."""

    def __init__(self, downscale: int = 4) -> None:
        if downscale < 1:
            raise ValueError(f"motion downscale must be >= 1, got {downscale}")
        self.downscale = downscale
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)

    def prepare(self, image_rgb: np.ndarray) -> np.ndarray:
        """The downscaled grey frame motion is estimated on."""
        h, w = image_rgb.shape[:2]
        size = (max(1, w // self.downscale), max(1, h // self.downscale))
        small = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)

    def estimate(self, current: np.ndarray, previous: np.ndarray) -> MotionField:
        """Where each pixel of ``current`` was in ``previous`` (both from :meth:`prepare`)."""
        if current.shape != previous.shape:
            raise ValueError(f"frames differ in size: {current.shape} vs {previous.shape}")
        if min(current.shape) < 8:  # DIS needs a few patches; tiny frames: assume no motion
            return MotionField(np.zeros((*current.shape, 2), np.float32), self.downscale)
        flow = self._dis.calc(current, previous, None)
        return MotionField(flow * np.float32(self.downscale), float(self.downscale))


def warp_previous(previous: np.ndarray, motion: MotionField) -> np.ndarray:
    """``previous`` (on the motion grid) moved into the current frame's coordinates."""
    positions = motion.flow / np.float32(motion.scale)
    positions += pixel_positions(*previous.shape[:2])
    return cv2.remap(previous, positions, None, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def flow_positions(motion: MotionField, height: int, width: int) -> np.ndarray:
    """height x width x (x, y) float32: where each pixel of the current frame (input
    resolution) was in the previous one, each taking its nearest flow sample as
    ``motion_sources`` does."""
    flow = motion.flow
    fh, fw = flow.shape[:2]
    if (fh, fw) != (height, width):
        k = round(motion.scale)
        if k == motion.scale and (fh * k, fw * k) == (height, width):
            flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_NEAREST)
        else:
            flow = (flow.take(nearest_samples(height, 1.0, motion.scale, fh), 0)
                    .take(nearest_samples(width, 1.0, motion.scale, fw), 1))
    return flow + pixel_positions(height, width)


def remap_nearest(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``values`` read at ``positions`` (H x W x (x, y)), each from the nearest pixel, the
    frame's border pixel for positions outside it."""
    return cv2.remap(values, positions, None, cv2.INTER_NEAREST,
                     borderMode=cv2.BORDER_REPLICATE)


def move_nearest(values: np.ndarray, motion: MotionField) -> np.ndarray:
    """``values`` of the previous frame (H x W, input resolution) moved into the current one,
    each pixel from the nearest pixel it came from: ``motion_sources``' positions, by one remap
    (2.5 instead of 15 ms at 720p). The positions are rounded in float32, so a source within
    1e-4 px of half-way between two pixels may be the other one (20 pixels of a 720p frame)."""
    return remap_nearest(values, flow_positions(motion, *values.shape[:2]))


@functools.lru_cache(maxsize=4)
def pixel_positions(height: int, width: int) -> np.ndarray:
    """height x width x (x, y) float32 coordinates of every pixel (read-only, kept per size:
    building them took half of a full-resolution warp)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    positions = np.stack([xs, ys], axis=-1)
    positions.flags.writeable = False
    return positions


def block_distortion(current: np.ndarray, previous: np.ndarray, motion: MotionField,
                     grid_shape: tuple[int, int], block_size: int) -> np.ndarray:
    """rows x cols mean absolute grey-level residual after motion compensation (0..255)."""
    residual = cv2.absdiff(current, warp_previous(previous, motion)).astype(np.float32)
    cell = max(1, round(block_size / motion.scale))
    return block_means(residual, grid_shape, cell)
