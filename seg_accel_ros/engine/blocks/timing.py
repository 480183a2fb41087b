"""Quick timing of block execution against the dense network (not a benchmark, not a test).

``python -m seg_accel_ros.engine.blocks.timing [--model swiftnet_lite0] [--size 720 1280]``
prints, for each FULL fraction, the median over rounds of (block-engine time / dense time) and
the ratio of the fastest runs; dense and block runs are interleaved so that load from other
processes hits both alike. On a shared machine ``--threads 1 --cpu-time`` is the steadiest.
``--ops`` instead prints where the time goes: each engine's self CPU time per PyTorch op
(convolutions, index gathers, upsampling ...) at the first FULL fraction.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from seg_accel_ros.engine.blocks.executor import BlockEngine
from seg_accel_ros.engine.dense import DenseEngine
from seg_accel_ros.engine.factory import inference_model, set_cpu_threads
from seg_accel_ros.models.registry import LoadedModel, create_model

STAGES = ("labels", "logits")


def time_ratios(model_name: str = "swiftnet_lite0", size: tuple[int, int] = (720, 1280),
                fractions: Sequence[float] = (0.0, 0.25, 1.0), repeats: int = 5,
                block_size: int = 128, warmup: int = 1, seed: int = 0,
                clock: Callable[[], float] = time.perf_counter, dense_single_path: bool = True,
                stage: str = "logits", image: np.ndarray | None = None,
                device: str = "cpu", dtype: torch.dtype = torch.float32
                ) -> dict[float, dict[str, float]]:
    """For each FULL fraction: median dense and block seconds, the median of the per-round
    ratios and the ratio of the fastest runs. Each round times the dense network and then
    every fraction, so that load from other processes affects all alike.

    ``stage``: what is timed on each side. ``"logits"``: the network on a random normalised
    input, its output assembled into the dense logits map. ``"labels"``: the engines'
    ``process`` on ``image`` (an ``H x W x 3`` uint8 RGB frame; ``size`` is then its size):
    preprocessing, the network and the per-pixel labels and confidence, what the node runs.

    ``device`` / ``dtype``: where and in which precision the network runs (the logits stage
    only off the CPU's float32); on CUDA each timed run ends with a synchronisation.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    if stage == "labels" and image is None:
        raise ValueError("the labels stage needs an image")
    if stage == "labels" and (torch.device(device).type != "cpu" or dtype != torch.float32):
        raise ValueError("the labels stage runs on the CPU in float32; time other devices "
                         "and precisions with the logits stage")
    model = timed_model(model_name, device, dtype)
    engine = BlockEngine(model, block_size, dense_single_path=dense_single_path)
    if image is not None:
        size = (int(image.shape[0]), int(image.shape[1]))
    grid = engine.grid(*size)
    g = torch.Generator().manual_seed(seed)
    maps = {f: grid.random(f, g) for f in fractions}
    run_dense, run_blocks = _stage_runs(engine, model, stage, size, image, g, dtype)
    if model.device.type == "cuda":
        clock = _synchronised(clock)
    dense_s: list[float] = []
    block_s: dict[float, list[float]] = {f: [] for f in fractions}
    ratios: dict[float, list[float]] = {f: [] for f in fractions}
    fallbacks: dict[float, int] = {}
    with torch.inference_mode():
        for i in range(warmup + repeats):
            t0 = clock()
            run_dense()
            dense = clock() - t0
            for f, paths in maps.items():
                t0 = clock()
                run_blocks(paths)
                t = clock() - t0
                fallbacks[f] = sum(engine.model.last_fallbacks.values())
                if i >= warmup:
                    block_s[f].append(t)
                    ratios[f].append(t / dense)
            if i >= warmup:
                dense_s.append(dense)
    return {f: {"dense_s": statistics.median(dense_s),
                "block_s": statistics.median(block_s[f]),
                "ratio": statistics.median(ratios[f]),
                "min_ratio": min(block_s[f]) / min(dense_s),
                "fallbacks": float(fallbacks[f])}
            for f in fractions}


def timed_model(model_name: str, device: str = "cpu",
                dtype: torch.dtype = torch.float32) -> LoadedModel:
    """The network as the node runs it on the CPU (:func:`inference_model`); elsewhere the
    plain network in ``dtype``, channels-last."""
    if torch.device(device).type == "cpu" and dtype == torch.float32:
        torch.set_flush_denormal(True)
        return inference_model(model_name)
    model = create_model(model_name, device=device)
    model.module.to(dtype=dtype, memory_format=torch.channels_last).eval()
    return model


def _synchronised(clock: Callable[[], float]) -> Callable[[], float]:
    """``clock`` read after the GPU has finished the work queued so far."""
    def read() -> float:
        torch.cuda.synchronize()
        return clock()
    return read


def _stage_runs(engine: BlockEngine, model: LoadedModel, stage: str, size: tuple[int, int],
                image: np.ndarray | None, g: torch.Generator,
                dtype: torch.dtype = torch.float32
                ) -> tuple[Callable[[], object], Callable[[torch.Tensor], object]]:
    """(dense run, block run under a path map) for ``stage`` (see :func:`time_ratios`)."""
    if stage == "labels":
        dense = DenseEngine(model)
        return (lambda: dense.process(image)), (lambda paths: engine.process(image, paths))
    # Channels-last like a preprocessed camera image (NCHW would slow the dense network).
    x = torch.randn(1, 3, *size, generator=g).to(model.device, dtype).contiguous(
        memory_format=torch.channels_last)
    return (lambda: model.module(x)), (lambda paths: engine.run(x, paths))


def op_times(model_name: str = "swiftnet_lite0", size: tuple[int, int] = (720, 1280),
             fraction: float = 1.0, block_size: int = 128, rounds: int = 2, seed: int = 0,
             dense_single_path: bool = False, image: np.ndarray | None = None
             ) -> dict[str, dict[str, float]]:
    """Self CPU milliseconds per frame of each PyTorch op, ``{"dense": {op: ms}, "blocks":
    {op: ms}}``: the engines' ``process`` on the same frame (``image`` or a random one),
    profiled over ``rounds`` frames after one warm-up. What is left after the convolutions is
    what the block machinery adds (gathers, copies) or saves."""
    torch.set_flush_denormal(True)
    model = inference_model(model_name)
    if image is None:
        image = np.random.default_rng(seed).integers(0, 256, (*size, 3), np.uint8)
    engine = BlockEngine(model, block_size, dense_single_path=dense_single_path)
    g = torch.Generator().manual_seed(seed)
    paths = engine.grid(*image.shape[:2]).random(fraction, g)
    run_dense, run_blocks = _stage_runs(engine, model, "labels", image.shape[:2], image, g)
    runs = {"dense": run_dense, "blocks": lambda: run_blocks(paths)}
    out = {}
    with torch.inference_mode():
        for name, run in runs.items():
            run()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(rounds):
                    run()
            out[name] = {e.key: e.self_cpu_time_total / rounds / 1e3
                         for e in prof.key_averages() if e.self_cpu_time_total > 0}
    return out


def _print_op_times(times: dict[str, dict[str, float]], top: int = 20) -> None:
    dense, blocks = times["dense"], times["blocks"]
    print(f"{'op':36s} {'blocks ms':>10s} {'dense ms':>10s}")
    for op in sorted(set(dense) | set(blocks), key=lambda k: -max(dense.get(k, 0),
                                                                  blocks.get(k, 0)))[:top]:
        print(f"{op:36s} {blocks.get(op, 0.0):10.1f} {dense.get(op, 0.0):10.1f}")
    print(f"{'all ops':36s} {sum(blocks.values()):10.1f} {sum(dense.values()):10.1f}")


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="swiftnet_lite0")
    p.add_argument("--size", type=int, nargs=2, default=(720, 1280), metavar=("H", "W"))
    p.add_argument("--fractions", type=float, nargs="+", default=(0.0, 0.25, 1.0))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--block-machinery", action="store_true",
                   help="run all-FULL / all-LOW frames block-wise too (no dense shortcut)")
    p.add_argument("--cpu-time", action="store_true",
                   help="measure process CPU time instead of wall time (robust to load from "
                        "other processes; use with --threads 1)")
    p.add_argument("--ops", action="store_true",
                   help="print self CPU time per PyTorch op of both engines instead")
    args = p.parse_args(argv)
    set_cpu_threads(args.threads)
    if args.ops:
        _print_op_times(op_times(args.model, tuple(args.size), args.fractions[0],
                                 args.block_size, rounds=args.repeats,
                                 dense_single_path=not args.block_machinery))
        return
    clock = time.process_time if args.cpu_time else time.perf_counter
    res = time_ratios(args.model, tuple(args.size), args.fractions, args.repeats,
                      args.block_size, clock=clock,
                      dense_single_path=not args.block_machinery)
    print(f"{args.model} {args.size[0]}x{args.size[1]} block {args.block_size}, "
          f"{torch.get_num_threads()} threads, {'CPU' if args.cpu_time else 'wall'} time, "
          f"{args.repeats} rounds"
          f"{', single-path frames block-wise' if args.block_machinery else ''}")
    for f, r in res.items():
        print(f"  FULL {f:4.0%} LOW {1 - f:4.0%}: block {r['block_s'] * 1e3:8.1f} ms  "
              f"dense {r['dense_s'] * 1e3:8.1f} ms  ratio {r['ratio']:.3f} (median)  "
              f"{r['min_ratio']:.3f} (fastest runs)  dense fallbacks {int(r['fallbacks'])}")


if __name__ == "__main__":
    main()
