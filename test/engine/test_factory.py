"""Device resolution: a device that does not exist here is a clear EngineError at set-up."""

from __future__ import annotations

import cv2
import pytest
import torch

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.factory import (
    EngineError,
    configure_runtime,
    resolve_device,
    set_cpu_threads,
)

CUDA = torch.cuda.is_available()


def test_cpu_always_resolves() -> None:
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_cuda_is_a_clear_error(device: str) -> None:
    with pytest.raises(EngineError, match=f"device '{device}' requested but CUDA is not "
                                          f"available on this machine"):
        resolve_device(device)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cuda_devices_that_exist_resolve_and_others_are_named() -> None:
    count = torch.cuda.device_count()
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device(f"cuda:{count - 1}") == torch.device("cuda", count - 1)
    with pytest.raises(EngineError, match=rf"'cuda:{count}' requested but this machine has "
                                          rf"{count} CUDA device\(s\)"):
        resolve_device(f"cuda:{count}")


@pytest.mark.parametrize(("device", "message"), [
    ("gpu", "invalid device 'gpu'"), ("cuda:x", "invalid device 'cuda:x'"),
    ("meta", "device 'meta' is not supported; use 'cpu', 'cuda' or 'cuda:N'"),
])
def test_other_devices_are_refused(device: str, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        resolve_device(device)


def test_num_threads_bounds_torch_and_opencv_alike() -> None:
    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        configure_runtime(EngineConfig(num_threads=1))
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
        configure_runtime(EngineConfig(num_threads=0))  # 0: leave both as they are
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
    finally:
        set_cpu_threads(before[0])
        cv2.setNumThreads(before[1])
