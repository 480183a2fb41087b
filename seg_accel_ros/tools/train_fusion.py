"""``seg_accel_train_fusion``: train the LOW-block cross-resolution fusion of a network.

The dense network is the teacher (see :mod:`seg_accel_ros.training.fusion`); the examples
are the LOW blocks the temporal engine sends to the fusion, on CamVid train images preceded
by a frame of random ego-motion and on video clips. Never CamVid val or test. Example (the
bundled weights, about 9 minutes on two CPU cores)::

    seg_accel_train_fusion --video ../shared/data/video/lanes_960x540_25fps.mp4 \
        --camvid-root ../shared/data/camvid --reuse-threshold 4 --threads 2 --epochs 15
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from seg_accel_ros.engine.factory import inference_model, set_cpu_threads
from seg_accel_ros.engine.fusion import CrossResolutionFusion, fusion_path
from seg_accel_ros.engine.temporal_policy import TemporalConfig
from seg_accel_ros.frame_sources import video_frames
from seg_accel_ros.training.fusion import (
    EngineTeacher,
    agreement_with_dense,
    chunks,
    still_streams,
    train_fusion,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="seg_accel_train_fusion",
                                description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="swiftnet_lite0", help="registered model name")
    p.add_argument("--weights", default=None, help="network weights (default: the registry's)")
    p.add_argument("--camvid-root", type=Path, default=None,
                   help="CamVid root (train split used); default ../shared/data/camvid")
    p.add_argument("--max-images", type=int, default=None, help="first N CamVid train images")
    p.add_argument("--video", type=Path, action="append", default=[],
                   help="a driving clip to take real frame pairs from (repeatable)")
    p.add_argument("--clip-length", type=int, default=24,
                   help="clips run through the engine in streams of this many frames")
    p.add_argument("--gaps", type=int, nargs="+", default=(1, 2, 3, 4),
                   help="still images: frames of ego-motion before the image")
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--blocks-per-frame", type=int, default=4,
                   help="LOW blocks taken per frame (at most)")
    p.add_argument("--reuse-threshold", type=float, default=TemporalConfig.reuse_threshold,
                   help="the engine's policy while collecting")
    p.add_argument("--full-fraction", type=float, default=TemporalConfig.full_fraction)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--held-out", type=float, default=0.15,
                   help="share of pairs kept out of training to report agreement on")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None,
                   help="weights file (default: the bundled path for --model)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_flush_denormal(True)
    set_cpu_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    model = inference_model(args.model, args.weights)
    config = TemporalConfig(reuse_threshold=args.reuse_threshold,
                            full_fraction=args.full_fraction)
    teacher = EngineTeacher(model, config, args.block_size, args.blocks_per_frame, args.seed)
    gaps = tuple(args.gaps)
    sequences: list[Iterator[list[np.ndarray]]] = []
    if args.camvid_root is not None or not args.video:
        from seg_accel_ros.datasets.camvid import CamVid

        train = CamVid("train", args.camvid_root)
        n = min(len(train), args.max_images or len(train))
        sequences.append(still_streams((train[i][0] for i in range(n)), gaps, rng))
    for clip in args.video:
        sequences.append(chunks(video_frames(clip), args.clip_length))
    t0 = time.perf_counter()
    groups = [teacher.sequence(frames) for source in sequences for frames in source]
    order = rng.permutation(len(groups))
    cut = int(round(len(order) * (1 - args.held_out)))
    if args.held_out > 0 and len(order) > 1:
        cut = min(cut, len(order) - 1)  # at least one sequence held out
    train_set = [e for i in order[:cut] for e in groups[i]]
    held_out = [e for i in order[cut:] for e in groups[i]]
    print(f"{len(groups)} sequences: {len(train_set)} training blocks, {len(held_out)} held "
          f"out, in {time.perf_counter() - t0:.0f} s", flush=True)
    fusion = CrossResolutionFusion(model.spec.num_classes, args.hidden)
    train_fusion(fusion, train_set, args.epochs, seed=args.seed,
                 log=lambda line: print(line, flush=True))
    metrics = agreement_with_dense(fusion, held_out) if held_out else {}
    print("held-out agreement with dense: " + json.dumps(
        {k: round(v * 100, 2) for k, v in metrics.items()}))
    out = args.out or fusion_path(args.model)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": fusion.state_dict(), "hidden": args.hidden,
                "model": args.model, "num_classes": model.spec.num_classes,
                "held_out_agreement": metrics, "argv": list(argv or sys.argv[1:])}, out)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
