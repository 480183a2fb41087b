"""The network on a second thread, for the pipelined temporal mode.

A frame handed to :class:`BackgroundNetwork` is segmented while the caller goes on answering
later frames by moving the last labels it has. Its labels then arrive some frames late, and
:class:`SourceChain` carries them over the motion of the frames in between.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np

from seg_accel_ros.engine.motion import remap_nearest
from seg_accel_ros.engine.result import FrameResult


class SourceChain:
    """Where each pixel of the latest frame came from in a base frame, composed over the
    frames after it (nearest pixels, as each frame's move takes them)."""

    def __init__(self) -> None:
        # H x W x (x, y) float32 positions in the base frame, rounded only when read: taking
        # the nearest pixel's unrounded position, then rounding, picks the same pixel
        self._sources: np.ndarray | None = None
        self.frames = 0  # frames after the base frame

    def append(self, positions: np.ndarray) -> None:
        """The next frame's positions in the frame before it (:func:`flow_positions`; kept,
        not copied)."""
        self._sources = (positions if self._sources is None
                         else remap_nearest(self._sources, positions))
        self.frames += 1

    def moved(self, values: np.ndarray) -> np.ndarray:
        """``values`` of the base frame (H x W) carried to the latest frame."""
        if self._sources is None:
            return values
        return remap_nearest(values, self._sources)


class BackgroundNetwork:
    """Runs ``compute`` on one frame at a time on its own thread.

    :meth:`submit` returns at once; :meth:`take` gives the result once it is ready. Torch and
    OpenCV release the interpreter lock while they work, so the caller estimates motion while
    the network runs.
    """

    def __init__(self, compute: Callable[..., FrameResult]) -> None:
        self._compute = compute
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self.completed = 0  # results taken
        self.failures = 0  # computations that raised (their frames are not waited for)

    @property
    def busy(self) -> bool:
        """A frame is being segmented (or is done and not taken yet)."""
        return self._pending is not None

    def submit(self, image_rgb: np.ndarray, *args: object) -> None:
        """Segment ``image_rgb`` (which must not change meanwhile) on the worker thread;
        ``args`` go to ``compute`` after it."""
        if self._pending is not None:
            raise RuntimeError("the background network is busy")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="seg_accel_network")
        self._pending = self._pool.submit(self._compute, image_rgb, *args)

    def wait(self) -> None:
        """Block until the submitted frame is done (:meth:`take` then returns it)."""
        if self._pending is not None:
            wait([self._pending])

    def take(self, block: bool = False) -> FrameResult | None:
        """The submitted frame's result once it is done (``block``: wait until it is), else
        None. A computation that raised is dropped, counted and re-raised."""
        future = self._pending
        if future is None or (not block and not future.done()):
            return None
        self._pending = None
        try:
            result = future.result()
        except Exception:
            self.failures += 1
            raise
        self.completed += 1
        return result

    def cancel(self) -> None:
        """Forget the submitted frame; waits for it to finish (a running network cannot be
        stopped) so that nothing else uses the model meanwhile."""
        future = self._pending
        if future is not None:
            self._pending = None
            try:
                future.result()
            except Exception:  # a failure of a frame nobody waits for any more
                self.failures += 1

    def close(self) -> None:
        """Cancel and stop the worker thread."""
        self.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
