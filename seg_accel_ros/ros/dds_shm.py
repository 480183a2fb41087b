"""Fast DDS shared-memory segments left behind by processes that died without closing them.

Fast DDS keeps each participant's data in ``/dev/shm/fastdds_<id>`` and holds an exclusive
``flock`` on ``fastdds_<id>_el`` for as long as the participant lives. A process killed with
SIGKILL (a supervisor's or a test runner's timeout, ``os._exit``) leaves both files behind.
``/dev/shm`` is RAM: with the 16 MB segment of ``config/fastdds_localhost.xml`` (sparse; 3.6 MB
written in the mean) 4,700 such leftovers once held 17 GB of a 23 GB machine. A segment
whose lock file can be locked has no owner: the rule of
``fastdds shm clean``, for machines (PyPI installs) that lack that command. Port segments
(``fastdds_port<N>``, 50 kB each, possibly shared by live processes) are left alone.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

SHM_DIR = Path("/dev/shm")
LOCK_SUFFIX = "_el"
_SEGMENT_NAME = re.compile(r"fastdds_[0-9a-f]{16}")


@dataclass(frozen=True)
class StaleSegment:
    """A participant segment whose owner is gone, and the memory it holds."""

    path: Path
    bytes: int


def _allocated_bytes(path: Path) -> int:
    """Memory a tmpfs file really holds (segments are sparse)."""
    try:
        return path.stat().st_blocks * 512
    except FileNotFoundError:
        return 0


def _remove_if_unowned(segment: Path, min_age_s: float, now: float, dry_run: bool) -> bool:
    """Remove ``segment`` and its lock file when nobody holds the lock; True when it was stale.

    Files younger than ``min_age_s`` are skipped: Fast DDS creates the lock file just before it
    takes the lock.
    """
    lock = segment.with_name(segment.name + LOCK_SUFFIX)
    try:
        if now - lock.stat().st_mtime < min_age_s:
            return False
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:  # no lock file (yet), or its owner just closed it
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False  # a live participant holds it
            raise
        if not dry_run:  # unlinked while we hold the lock, so no owner can appear meanwhile
            segment.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def remove_stale_segments(directory: Path = SHM_DIR, min_age_s: float = 5.0,
                          dry_run: bool = False) -> list[StaleSegment]:
    """Remove (or with ``dry_run`` only list) the Fast DDS participant segments in
    ``directory`` whose owning process is gone; returns what was (or would be) freed."""
    if not directory.is_dir():
        return []
    now = time.time()
    stale = []
    for segment in sorted(directory.iterdir()):
        if not _SEGMENT_NAME.fullmatch(segment.name):
            continue
        size = _allocated_bytes(segment)
        if _remove_if_unowned(segment, min_age_s, now, dry_run):
            stale.append(StaleSegment(segment, size))
    return stale
