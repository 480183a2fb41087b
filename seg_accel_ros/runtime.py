"""Process-wide settings for streaming large frames with steady latency (no ROS, no torch)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_TRIM_THRESHOLD = 1024 * 1024 * 1024  # far above one 720p frame's transient memory (~300 MB)
PUBLICATION_MODE = "RMW_FASTRTPS_PUBLICATION_MODE"


def keep_large_buffers_in_heap() -> bool:
    """Make glibc reuse freed frame-sized buffers instead of returning them to the OS.

    Freed memory that goes back to the OS faults in again, page by page, when the next frame
    allocates it. glibc's defaults do that to every buffer above its mmap threshold (at most
    32 MB: 720p logits are 40 MB) and to the free top of a heap above 32 MB, and a second
    thread's heaps are capped at 64 MB and deleted when empty. At two threads a dense 720p
    frame then spent 80-210 ms of system time (of ~850 ms CPU) in 4 of 5 processes. Here all
    threads share one heap that grows with ``brk`` (no mmap), trimmed only when more than
    1 GB is free at its top: no system time, ~30% less wall time at two threads, and the
    resident memory stays at its peak (no higher than before). Returns False where the C
    library is not glibc.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and ok
    return mallopt(_M_ARENA_MAX, 1) == 1 and ok


ONEDNN_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
ONEDNN_CACHE_CAPACITY = 16384


def keep_onednn_primitives(env: dict[str, str] | None = None) -> str:
    """Let oneDNN keep 16384 compiled convolution kernels instead of 1024, unless ``env``
    says else.

    oneDNN compiles a kernel (a primitive) per convolution shape, and a block-wise frame has
    its own shapes: about 300 per 720p frame, of which about 90 are new whenever the number of
    FULL or LOW blocks changes, as it does from frame to frame in temporal mode. Past the
    default 1024 the cache evicts kernels that are needed again, every frame recompiles some
    and even dense frames slowed down: timing every FULL share in one process
    (``seg_accel_bench --suite blocks``) measured dense at 699-755 ms instead of 402-406 ms,
    and the temporal engine on the highway clip ran 5-8% slower. Must run before the first
    convolution. Returns the capacity in effect.
    """
    env = os.environ if env is None else env
    return env.setdefault(ONEDNN_CACHE, str(ONEDNN_CACHE_CAPACITY))


def prefer_asynchronous_publication(env: dict[str, str] | None = None) -> str:
    """Let Fast DDS send this process's messages from its own thread, unless ``env`` says else.

    Must run before ``rclpy.init()``. Synchronously (rmw_fastrtps' default) the
    publishing thread also delivers each sample to every reader: 1.1 ms per 720p rgb8 image
    here, with the GIL held; asynchronously ``publish`` only queues it (0.6 ms). Other
    middlewares ignore the variable. Returns the mode in effect.
    """
    env = os.environ if env is None else env
    return env.setdefault(PUBLICATION_MODE, "ASYNCHRONOUS")


def freeze_long_lived_objects() -> int:
    """Exempt every object alive now (network, modules, ROS entities) from the cyclic collector.

    With a network loaded a process holds about 170,000 tracked objects; a full collection then
    takes about 100 ms, and the thread that triggers it (often the executor taking a frame)
    holds the GIL throughout, so every thread stalls. Frozen objects are still freed by
    reference counting; :func:`thaw_objects` hands them back once they are released, so that
    their reference cycles are collected. Returns how many objects are frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw_objects() -> None:
    """Undo :func:`freeze_long_lived_objects` (the next full collection scans them again)."""
    gc.unfreeze()
