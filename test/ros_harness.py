"""Cross-process ROS 2 test harness for test/ros: real rclpy, real DDS, nothing mocked.

Each test module gets its own ROS_DOMAIN_ID; the node and the frame publisher run in their own
processes; the test process talks to them only through topics and the standard lifecycle and
parameter services (what `ros2 lifecycle` and `ros2 param` call).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import (
    DescribeParameters,
    GetParameters,
    SetParameters,
)
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from seg_accel_ros.ros.diagnostics import status_name

_next_domain = [100 + os.getpid() % 60]


def fresh_domain() -> int:
    _next_domain[0] += 1
    return _next_domain[0] % 230 + 1


class ManagedProcess:
    """A child process with its output in a log file; stopped with SIGINT, then killed."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:  # stacks into the log, to see where it hangs
                self.proc.send_signal(signal.SIGUSR1)
                time.sleep(2.0)
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def start_node(env: dict[str, str], log: Path, params: dict[str, object] | None = None,
               name: str = "seg_accel_node", namespace: str = "",
               params_files: tuple[Path, ...] = ()) -> ManagedProcess:
    """seg_accel_node in its own process: ``params_files`` as ``--params-file`` (in order),
    then ``params`` as ``-p`` (which win over the files)."""
    args = [sys.executable, "-m", "seg_accel_ros.ros.process", "--ros-args",
            "-r", f"__node:={name}"]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    for path in params_files:
        args += ["--params-file", str(path)]
    for key, value in (params or {}).items():
        if isinstance(value, bool):
            value = str(value).lower()
        args += ["-p", f"{key}:={value}"]
    return ManagedProcess(args, env, log)


def start_publisher(env: dict[str, str], log: Path, *extra: str) -> ManagedProcess:
    return ManagedProcess([sys.executable, "-m", "seg_accel_ros.ros.video_publisher", *extra],
                          env, log)


QUERY_RESEND_S = 5.0  # a read-only query unanswered this long is sent again
ANSWER_WAIT_S = 10.0  # a transition unanswered this long is looked up with get_state

# The primary state each lifecycle transition leads to when it succeeds.
TRANSITION_GOALS = {
    Transition.TRANSITION_CONFIGURE: "inactive",
    Transition.TRANSITION_CLEANUP: "unconfigured",
    Transition.TRANSITION_ACTIVATE: "active",
    Transition.TRANSITION_DEACTIVATE: "inactive",
    Transition.TRANSITION_UNCONFIGURED_SHUTDOWN: "finalized",
    Transition.TRANSITION_INACTIVE_SHUTDOWN: "finalized",
    Transition.TRANSITION_ACTIVE_SHUTDOWN: "finalized",
}


def _wait(future, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``future``; True when it is done."""
    deadline = time.monotonic() + max(seconds, 0.0)
    while not future.done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Probe:
    """The test's own rclpy node, spun in a background thread.

    Service clients are created once per service and kept until :meth:`close`: destroying a
    client from this thread while the executor may still be taking a response for it is a
    race, and a kept client is matched by the node's server once, not on every call.
    """

    def __init__(self, context) -> None:
        self.node = rclpy.create_node(f"probe_{os.getpid()}", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._clients: dict[tuple[type, str], object] = {}
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _client(self, srv_type, name: str):
        client = self._clients.get((srv_type, name))
        if client is None:
            client = self._clients[(srv_type, name)] = self.node.create_client(srv_type, name)
        return client

    def call(self, srv_type, name: str, request, timeout: float = 30.0,
             resend_after: float | None = None):
        """Call a service and wait for its answer.

        ``resend_after`` (idempotent queries only): send the request again when no answer came
        in that many seconds. A server drops its answer when it has not yet discovered this
        client's response reader (Fast DDS waits 100 ms for it), which happens to a node that
        has just started on a loaded machine.
        """
        client = self._client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} not available")
        future = client.call_async(request)
        sent = time.monotonic()
        deadline = sent + timeout
        while not future.done():
            now = time.monotonic()
            if now > deadline:
                client.remove_pending_request(future)
                raise TimeoutError(f"service {name} did not answer")
            if resend_after is not None and now - sent > resend_after:
                client.remove_pending_request(future)  # a late answer to it is ignored
                future, sent = client.call_async(request), now
            time.sleep(0.01)
        return future.result()

    def change_state(self, node: str, transition_id: int, timeout: float = 120.0) -> bool:
        """Make a lifecycle transition; True when it succeeded.

        A transition must not be sent twice, so a lost answer (see :meth:`call`) is made rare
        and then survivable: the ``change_state`` client exists and one ``get_state`` round trip
        has been made before the request goes out, and when no answer comes, the node's state
        tells the outcome (its single-threaded executor answers ``get_state`` only once the
        transition is over).
        """
        name = f"/{node}/change_state"
        client = self._client(ChangeState, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} not available")
        start = self.get_state(node)
        req = ChangeState.Request()
        req.transition.id = transition_id
        future = client.call_async(req)
        deadline = time.monotonic() + timeout
        state = start
        while not future.done():
            if not _wait(future, min(ANSWER_WAIT_S, deadline - time.monotonic())):
                state = self.get_state(node)
                if state != start:
                    client.remove_pending_request(future)
                    return state == TRANSITION_GOALS[transition_id]
                if time.monotonic() > deadline:
                    client.remove_pending_request(future)
                    return False  # back in its start state: the transition failed
        return future.result().success

    def get_state(self, node: str) -> str:
        return self.call(GetState, f"/{node}/get_state", GetState.Request(),
                         resend_after=QUERY_RESEND_S).current_state.label

    def set_parameters(self, node: str, values: dict[str, object]):
        req = SetParameters.Request()
        req.parameters = [_to_msg(k, v) for k, v in values.items()]
        return self.call(SetParameters, f"/{node}/set_parameters", req).results

    def get_parameters(self, node: str, names: list[str]) -> list[object]:
        req = GetParameters.Request()
        req.names = names
        values = self.call(GetParameters, f"/{node}/get_parameters", req,
                           resend_after=QUERY_RESEND_S).values
        return [Parameter.from_parameter_msg(ParameterMsg(name=n, value=v)).value
                for n, v in zip(names, values, strict=True)]

    def describe_parameters(self, node: str, names: list[str]):
        req = DescribeParameters.Request()
        req.names = names
        return self.call(DescribeParameters, f"/{node}/describe_parameters", req,
                         resend_after=QUERY_RESEND_S).descriptors

    def collect(self, msg_type, topic: str, count: int, timeout: float, qos=10) -> list:
        """Subscribe to ``topic`` and return up to ``count`` messages received in ``timeout``."""
        received: list = []
        sub = self.node.create_subscription(msg_type, topic, received.append, qos)
        deadline = time.monotonic() + timeout
        while len(received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        self.node.destroy_subscription(sub)
        return received[:count] if count else received

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=10.0)
        for client in self._clients.values():
            self.node.destroy_client(client)
        self.node.destroy_node()


class LifecycleDriver:
    """Drives one node's lifecycle through a persistent change_state client (what `ros2
    lifecycle set` calls), for tests that make hundreds of transitions."""

    def __init__(self, probe: Probe, node: str, timeout: float = 60.0) -> None:
        self.probe, self.timeout = probe, timeout
        self.client = probe.node.create_client(ChangeState, f"/{node}/change_state")
        if not self.client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"/{node}/change_state not available")
        probe.get_state(node)  # a round trip first: see Probe.change_state

    def change(self, transition_id: int) -> bool:
        req = ChangeState.Request()
        req.transition.id = transition_id
        future = self.client.call_async(req)
        deadline = time.monotonic() + self.timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"transition {transition_id} did not answer")
            time.sleep(0.002)
        return future.result().success

    def close(self) -> None:
        self.probe.node.destroy_client(self.client)


class FrameSender:
    """Publishes one raw frame at a time on ``image`` and waits for the node's labels for it
    (so that no frame is dropped in the node's one-slot mailbox)."""

    def __init__(self, probe: Probe, node: str, timeout: float = 60.0) -> None:
        from sensor_msgs.msg import Image

        self.probe = probe
        self.pub = probe.node.create_publisher(Image, "image", 10)
        self.labels: list = []
        self.sub = probe.node.create_subscription(Image, f"/{node}/labels", self.labels.append,
                                                  10)
        deadline = time.monotonic() + timeout
        while self.pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)

    def send(self, image, stamp: float, timeout: float = 30.0):
        """Publish an HxWx3 uint8 RGB frame; return its labels message, or None on timeout."""
        from sensor_msgs.msg import Image

        from seg_accel_ros.image_codec import encode_image, fill_image_msg

        msg = fill_image_msg(Image(), encode_image(image, "rgb8"))
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), round(stamp % 1 * 1e9)
        before = len(self.labels)
        self.pub.publish(msg)
        deadline = time.monotonic() + timeout
        while len(self.labels) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.labels[-1] if len(self.labels) > before else None

    def close(self) -> None:
        self.probe.node.destroy_subscription(self.sub)
        self.probe.node.destroy_publisher(self.pub)


def diagnostics_of(status, node: str) -> bool:
    """Whether a DiagnosticStatus is the one of node ``node`` (fully qualified, or a name in
    the root namespace)."""
    return status.name == status_name(node)


class DiagnosticsRecorder:
    """Every status node ``node`` publishes on /diagnostics from now on (``probe`` spins)."""

    def __init__(self, probe, node: str) -> None:
        self.probe, self.node, self.statuses = probe, node, []
        self.sub = probe.node.create_subscription(DiagnosticArray, "/diagnostics",
                                                  self._on_msg, 10)

    def _on_msg(self, msg: DiagnosticArray) -> None:
        self.statuses.extend(s for s in msg.status if diagnostics_of(s, self.node))

    def wait_for(self, predicate, timeout: float = 10.0):
        """The first status from now on that satisfies ``predicate``, or None."""
        start = len(self.statuses)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [s for s in self.statuses[start:] if predicate(s)]
            if found:
                return found[0]
            time.sleep(0.05)
        return None

    def close(self) -> None:
        self.probe.node.destroy_subscription(self.sub)


def proc_status(pid: int) -> dict[str, int]:
    """Threads, VmRSS and VmSize (kB) of a process, from /proc/PID/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Threads", "VmRSS", "VmSize"):
            values[key] = int(rest.split()[0])
    return values


def _to_msg(name: str, value: object) -> ParameterMsg:
    if isinstance(value, ParameterMsg):
        return value
    return Parameter(name, value=value).to_parameter_msg()


