"""A one-slot mailbox between the subscription callback and the inference thread.

Latest frame wins: putting a frame while one is pending replaces it, and the caller counts
the replaced frame as dropped. The inference thread never sees a frame older than the newest.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestMailbox(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced a pending (now dropped) item."""
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item (removing it), or None on timeout or when closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def clear(self) -> bool:
        """Drop the pending item; True when there was one."""
        with self._cond:
            had = self._item is not None
            self._item = None
            return had

    def close(self) -> None:
        """Wake the consumer for good (it then gets None)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def open(self) -> None:
        with self._cond:
            self._closed = False
