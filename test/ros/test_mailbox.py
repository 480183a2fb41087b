"""The one-slot mailbox: latest frame wins, replaced frames are reported."""

from __future__ import annotations

import threading

from seg_accel_ros.ros.mailbox import LatestMailbox


def test_latest_item_wins_and_replacements_are_reported():
    box: LatestMailbox[int] = LatestMailbox()
    assert box.put(1) is False
    assert box.put(2) is True
    assert box.take(0) == 2
    assert box.take(0) is None


def test_close_wakes_a_waiting_consumer():
    box: LatestMailbox[int] = LatestMailbox()
    got = []
    consumer = threading.Thread(target=lambda: got.append(box.take(timeout=30)))
    consumer.start()
    box.close()
    consumer.join(5)
    assert not consumer.is_alive() and got == [None]


def test_clear_reports_a_pending_item():
    box: LatestMailbox[str] = LatestMailbox()
    assert box.clear() is False
    box.put("a")
    assert box.clear() is True
    assert box.take(0) is None
