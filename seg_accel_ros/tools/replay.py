"""seg_accel_replay: publish the image topics of a rosbag2 at their recorded timing.

    seg_accel_replay BAG [--rate FACTOR] [--loop] [--start-offset S] [--remap /from:=/to ...]
        [--clock [HZ]] [--topics T ...] [--qos reliable|best_effort] [--ros-args ...]

Like ``ros2 bag play`` (which needs a ROS install) for sensor_msgs/Image and CompressedImage
topics of sqlite3 or mcap bags: the stored CDR bytes are published unchanged, so subscribers get
bit-identical messages with the recorded header stamps. Message i is published at
``start + (t_i - t_0) / rate`` on a monotonic clock, so timing errors never accumulate. With
``--clock`` the bag time is published on /clock (for nodes with use_sim_time), at HZ (default 40)
and just before every message. ``--loop`` restarts one typical frame period after the last
message, from the start offset; the clock then jumps back, as with ``ros2 bag play --loop``.
A summary (messages per topic, duration, achieved rate, lateness) is printed at the end or on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import rclpy
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image

from seg_accel_ros import bags

PROG = "seg_accel_replay"
MSG_CLASSES = {bags.IMAGE_TYPE: Image, bags.COMPRESSED_TYPE: CompressedImage}
QOS_DEPTH = 10


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options (ROS arguments already removed)."""
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("bag", help="rosbag2 folder, or a .mcap / .db3 file")
    ap.add_argument("--rate", type=float, default=1.0,
                    help="playback speed factor (2.0: twice as fast)")
    ap.add_argument("--loop", action="store_true", help="play again and again until Ctrl-C")
    ap.add_argument("--start-offset", type=float, default=0.0, metavar="S",
                    help="skip the first S seconds of the bag")
    ap.add_argument("--remap", nargs="+", action="extend", default=[], metavar="FROM:=TO",
                    help="publish topic FROM of the bag on TO")
    ap.add_argument("--clock", type=float, nargs="?", const=40.0, default=None, metavar="HZ",
                    help="publish the bag time on /clock at HZ (default 40) and per message")
    ap.add_argument("--topics", nargs="+", action="extend", default=None, metavar="TOPIC",
                    help="image topics of the bag to play (default: all)")
    ap.add_argument("--qos", choices=("reliable", "best_effort"), default="reliable",
                    help="publisher reliability; reliable also serves best-effort subscribers")
    ap.add_argument("--delay", type=float, default=0.0, metavar="S",
                    help="seconds to wait before playing (discovery)")
    ap.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                    help="wait up to S seconds until every topic has a subscriber")
    ap.add_argument("--min-subscribers", type=int, default=None, metavar="N",
                    help="with --wait-for-subscribers: wait for N subscribers per topic "
                         "(default 1)")
    args = ap.parse_args(argv)
    if not 0.0 < args.rate <= 1000.0:
        ap.error("--rate must be in (0, 1000]")
    if not 0.0 <= args.start_offset <= 1e9:
        ap.error("--start-offset must be >= 0 seconds")
    if args.clock is not None and not 0.0 < args.clock <= 10000.0:
        ap.error("--clock must be in (0, 10000] Hz")
    if not 0.0 <= args.delay <= 3600.0 or not 0.0 <= args.wait_for_subscribers <= 3600.0:
        ap.error("--delay and --wait-for-subscribers must be in 0..3600 seconds")
    if args.min_subscribers is not None and not args.wait_for_subscribers:
        ap.error("--min-subscribers is what --wait-for-subscribers waits for; give both")
    if args.min_subscribers is None:
        args.min_subscribers = 1
    if args.min_subscribers < 1:
        ap.error("--min-subscribers must be >= 1")
    try:
        args.remap = parse_remaps(args.remap)
    except ValueError as exc:
        ap.error(str(exc))
    return args


def parse_remaps(items: Sequence[str]) -> dict[str, str]:
    """'/from:=/to' rules -> {'/from': '/to'}; names without a leading slash get one."""
    rules: dict[str, str] = {}
    for item in items:
        source, sep, target = item.partition(":=")
        if not sep or not source.strip("/") or not target.strip("/"):
            raise ValueError(f"--remap takes FROM:=TO, got {item!r}")
        rules["/" + source.lstrip("/")] = "/" + target.lstrip("/")
    return rules


@dataclass
class TopicStats:
    """What was published on one topic: count, wall and bag times of the first and last."""

    out_topic: str
    msgtype: str
    count: int = 0
    first_wall: float = 0.0
    last_wall: float = 0.0
    pass_count: int = 0  # bag times: first pass only (a loop restarts them)
    first_bag_ns: int = 0
    last_bag_ns: int = 0

    def add(self, wall: float, bag_ns: int, first_pass: bool) -> None:
        """Count one published message."""
        if not self.count:
            self.first_wall = wall
        self.count += 1
        self.last_wall = wall
        if first_pass:
            if not self.pass_count:
                self.first_bag_ns = bag_ns
            self.pass_count += 1
            self.last_bag_ns = bag_ns

    def recorded_rate(self) -> float:
        """Messages per second of bag time (first pass)."""
        span = (self.last_bag_ns - self.first_bag_ns) / 1e9
        return (self.pass_count - 1) / span if self.pass_count > 1 and span > 0 else 0.0

    def achieved_rate(self) -> float:
        """Messages per second of wall time as published."""
        span = self.last_wall - self.first_wall
        return (self.count - 1) / span if self.count > 1 and span > 0 else 0.0


@dataclass
class PlaybackStats:
    """Per-topic counts, passes over the bag, and how late the latest messages went out (s)."""

    topics: dict[str, TopicStats]
    passes: int = 0
    start_wall: float = 0.0
    end_wall: float = 0.0
    lateness: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    interrupted: bool = False


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


class Player:
    """Publishes raw messages of an open bag at bag time / rate; optionally /clock."""

    def __init__(self, node: Any, bag: bags.BagReader, topics: list[bags.TopicInfo],
                 args: argparse.Namespace) -> None:
        self.bag, self.args = bag, args
        reliability = (ReliabilityPolicy.RELIABLE if args.qos == "reliable"
                       else ReliabilityPolicy.BEST_EFFORT)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=QOS_DEPTH,
                         reliability=reliability, durability=DurabilityPolicy.VOLATILE)
        self.publishers: dict[str, Any] = {}
        stats: dict[str, TopicStats] = {}
        for info in topics:
            out = args.remap.get(info.name, info.name)
            self.publishers[info.name] = node.create_publisher(MSG_CLASSES[info.msgtype], out,
                                                               qos)
            stats[info.name] = TopicStats(out, info.msgtype)
        self.stats = PlaybackStats(stats)
        self.topic_names = [t.name for t in topics]
        self.clock_pub = None
        if args.clock is not None:
            self.clock_pub = node.create_publisher(
                Clock, "/clock", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        self._clock_msg = Clock()
        self._last_clock_ns = -1
        self._next_tick = 0.0

    def flush(self, timeout_s: float = 2.0) -> None:
        """Let reliable subscribers acknowledge the last messages before the process exits."""
        for publisher in self.publishers.values():
            publisher.wait_for_all_acked(Duration(seconds=timeout_s))

    def wait_for_subscribers(self, timeout: float, count: int = 1) -> bool:
        """Wait until every image publisher has ``count`` subscribers; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() >= count for p in self.publishers.values()):
                return True
            time.sleep(0.02)
        return False

    def _publish_clock(self, bag_ns: int) -> None:
        bag_ns = max(bag_ns, self._last_clock_ns)  # never backwards within a pass
        self._clock_msg.clock.sec, self._clock_msg.clock.nanosec = divmod(bag_ns, 1_000_000_000)
        self.clock_pub.publish(self._clock_msg)
        self._last_clock_ns = bag_ns

    def _wait(self, deadline: float, start_wall: float, base_ns: int, next_ns: int) -> None:
        """Sleep until ``deadline``, publishing /clock ticks (never past ``next_ns``)."""
        if self.clock_pub is None:
            _sleep_until(deadline)
            return
        period = 1.0 / self.args.clock
        while True:
            tick = self._next_tick
            if tick >= deadline:
                _sleep_until(deadline)
                return
            _sleep_until(tick)
            elapsed = max(0.0, time.monotonic() - start_wall)
            self._publish_clock(min(base_ns + round(elapsed * self.args.rate * 1e9), next_ns))
            self._next_tick = max(tick + period, time.monotonic())

    def play(self) -> PlaybackStats:
        """Play the bag once, or until Ctrl-C with --loop; returns what was published."""
        stats, rate = self.stats, self.args.rate
        start_wall = time.monotonic()
        stats.start_wall = start_wall
        self._next_tick = start_wall
        loop_period_ns: int | None = None
        try:
            while True:
                base_ns: int | None = None
                prev_ns, gaps = None, []
                for raw in self.bag.raw_messages(self.topic_names, self.args.start_offset):
                    if base_ns is None:
                        base_ns = raw.time_ns
                        self._last_clock_ns = -1
                    deadline = start_wall + (raw.time_ns - base_ns) / 1e9 / rate
                    self._wait(deadline, start_wall, base_ns, raw.time_ns)
                    if self.clock_pub is not None:
                        self._publish_clock(raw.time_ns)
                    self.publishers[raw.topic].publish(raw.data)
                    now = time.monotonic()
                    stats.lateness.append(now - deadline)
                    stats.topics[raw.topic].add(now, raw.time_ns, stats.passes == 0)
                    if loop_period_ns is None and prev_ns is not None:
                        gaps.append(raw.time_ns - prev_ns)
                    prev_ns = raw.time_ns
                stats.passes += 1
                if not self.args.loop or base_ns is None:
                    break
                if loop_period_ns is None:  # one typical frame period between passes
                    median = int(statistics.median(gaps)) if gaps else 1_000_000_000
                    loop_period_ns = max(median, 1_000_000)
                start_wall += (prev_ns - base_ns + loop_period_ns) / 1e9 / rate
        except KeyboardInterrupt:
            stats.interrupted = True
        finally:
            stats.end_wall = time.monotonic()
        return stats


def summary(stats: PlaybackStats, bag: bags.BagReader, rate: float) -> str:
    """Readable report: messages per topic, duration, recorded / target / achieved rates."""
    total = sum(t.count for t in stats.topics.values())
    duration = stats.end_wall - stats.start_wall
    state = "interrupted" if stats.interrupted else "done"
    lines = [f"{PROG}: {state}: {bag.path} [{bag.storage}] at rate x{rate:g}, "
             f"{stats.passes} complete pass(es)"]
    for name, t in stats.topics.items():
        recorded, achieved = t.recorded_rate(), t.achieved_rate()
        target = name if t.out_topic == name else f"{name} -> {t.out_topic}"
        lines.append(f"  {target} [{t.msgtype}]: {t.count} messages, recorded "
                     f"{recorded:.2f} Hz, target {recorded * rate:.2f} Hz, achieved "
                     f"{achieved:.2f} Hz")
    late = sorted(stats.lateness)
    if late:
        p50, p95 = late[len(late) // 2], late[min(len(late) - 1, int(len(late) * 0.95))]
        lateness = (f"; lateness p50 {p50 * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms, "
                    f"max {late[-1] * 1e3:.2f} ms")
    else:
        lateness = ""
    lines.append(f"  total {total} messages in {duration:.3f} s{lateness}")
    return "\n".join(lines)


def split_ros_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(our arguments, the '--ros-args ... [--]' sections for rclpy).

    rclpy's remove_ros_args would also swallow our 'FROM:=TO' values (legacy remap syntax).
    """
    ours: list[str] = []
    ros: list[str] = []
    inside = False
    for arg in argv:
        if arg == "--ros-args":
            inside = True
            ros.append(arg)
        elif inside and arg == "--":
            inside = False
            ros.append(arg)
        else:
            (ros if inside else ours).append(arg)
    return ours, ros


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _fail(message: object) -> SystemExit:
    return SystemExit(f"{PROG}: error: {message}")


def _run(player: Player, args: argparse.Namespace) -> PlaybackStats:
    """Delay, wait for subscribers, play; SIGINT or SIGTERM stop it with the stats so far."""
    # Children of non-interactive shells inherit SIGINT ignored: install our own handlers.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        time.sleep(args.delay)
        if args.wait_for_subscribers and not player.wait_for_subscribers(
                args.wait_for_subscribers, args.min_subscribers):
            print(f"{PROG}: no subscriber on some topic after {args.wait_for_subscribers:g} s; "
                  "playing anyway", file=sys.stderr, flush=True)
        return player.play()
    except KeyboardInterrupt:  # before playing started
        player.stats.interrupted = True
        return player.stats
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Replay a bag's image topics through ROS 2; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, ros_args = split_ros_args(argv)
    args = parse_args(ours)
    try:
        bag = bags.BagReader(args.bag)
    except bags.BagError as exc:
        raise _fail(exc) from None
    with bag:
        try:
            topics = bag.select_topics(args.topics)
        except bags.BagError as exc:
            raise _fail(exc) from None
        unknown = sorted(set(args.remap) - {t.name for t in topics})
        if unknown:
            raise _fail(f"--remap names topics that are not played: {', '.join(unknown)}")
        if args.start_offset * 1e9 > bag.duration_ns:
            raise _fail(f"--start-offset {args.start_offset:g} s is past the end of the bag "
                        f"({bag.duration_ns / 1e9:.3f} s)")
        context = rclpy.Context()
        rclpy.init(args=[PROG, *ros_args], context=context,
                   signal_handler_options=SignalHandlerOptions.NO)
        node = None
        try:
            node = rclpy.create_node("seg_accel_replay", context=context)
            try:
                player = Player(node, bag, topics, args)
            except Exception as exc:  # rclpy rejects invalid (remapped) topic names here
                raise _fail(exc) from None
            try:
                stats = _run(player, args)
            except bags.BagError as exc:
                print(summary(player.stats, bag, args.rate), flush=True)
                raise _fail(exc) from None
            print(summary(stats, bag, args.rate), flush=True)
            player.flush()
        finally:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown(context=context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
