"""A CUDA device that this machine does not have: configure fails with the reason, unless
allow_cpu_fallback is set, in which case the node configures on the CPU and says so."""

from __future__ import annotations

import torch
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from ros_harness import diagnostics_of, start_node

# on a GPU machine, ask for one device more than it has
ABSENT = (f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda")


def _device_in_diagnostics(probe, node: str) -> str | None:
    for msg in probe.collect(DiagnosticArray, "/diagnostics", 3, timeout=5):
        for status in msg.status:
            if diagnostics_of(status, node):
                return {kv.key: kv.value for kv in status.values}["device"]
    return None


def test_absent_cuda_fails_configure_or_falls_back_to_cpu_when_allowed(dds_env, probe,
                                                                       tmp_path):
    strict = start_node(dds_env, tmp_path / "strict.log",
                        {"device": ABSENT, "warmup_frames": 0}, name="seg_cuda_strict")
    fallback = start_node(dds_env, tmp_path / "fallback.log",
                          {"device": ABSENT, "allow_cpu_fallback": True, "warmup_frames": 0},
                          name="seg_cuda_fallback")
    try:
        assert not probe.change_state("seg_cuda_strict", Transition.TRANSITION_CONFIGURE)
        assert probe.get_state("seg_cuda_strict") == "unconfigured"
        assert strict.alive()

        assert probe.change_state("seg_cuda_fallback", Transition.TRANSITION_CONFIGURE), (
            fallback.output())
        assert probe.get_state("seg_cuda_fallback") == "inactive"
        assert _device_in_diagnostics(probe, "seg_cuda_fallback") == "cpu"
    finally:
        strict.stop()
        fallback.stop()
    assert (f"configure failed: device '{ABSENT}' requested but" in strict.output()
            and "allow_cpu_fallback: true runs on the CPU instead" in strict.output())
    log = fallback.output()
    assert "allow_cpu_fallback is set: running on the CPU" in log
    assert "WARN" in next(line for line in log.splitlines() if "allow_cpu_fallback" in line)
    assert next(line for line in log.splitlines() if "configured:" in line).endswith(" on cpu")
