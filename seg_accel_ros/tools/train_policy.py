"""``seg_accel_train_policy``: train the learned FULL/LOW block scorer of a network.

    seg_accel_train_policy --model swiftnet_lite0          # CamVid train; checked on val

For every CamVid train frame the network runs densely (FULL) and at half resolution (LOW); the
target per block is the share of its pixels FULL labels right and LOW does not. A ridge
regression on cheap image features (``engine/learned_policy.py``) predicts it. On val it prints
the mIoU of frames that take FULL labels in the chosen blocks and LOW labels elsewhere, for the
learned scorer and for the cheap complexity signals, at the same FULL share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from seg_accel_ros.engine.blocks import BlockEngine, BlockGrid
from seg_accel_ros.engine.dense import DenseEngine
from seg_accel_ros.engine.factory import inference_model, set_cpu_threads
from seg_accel_ros.engine.learned_policy import (
    block_features,
    block_gain,
    file_sha256,
    fit_scorer,
    scorer_path,
    sidecar_scorer_path,
)
from seg_accel_ros.engine.policy import ComplexityPolicy
from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.evaluation.headroom import mix_blocks, top_blocks
from seg_accel_ros.evaluation.metrics import ConfusionMatrix
from seg_accel_ros.models.classes import CAMVID_IGNORE_INDEX

Frame = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # image, truth, FULL, LOW labels


def full_and_low(samples: Sequence, dense: DenseEngine, blocks: BlockEngine) -> list[Frame]:
    """(image, truth, FULL labels, LOW labels) of every ``(image, truth)`` sample."""
    frames = []
    for image, truth in samples:
        grid = blocks.grid(*image.shape[:2])
        low = blocks.process(image, np.full(grid.shape, int(BlockPath.LOW), np.int64)).labels
        frames.append((image, truth, dense.process(image).labels, low))
    return frames


def mixed_miou(frames: Sequence[Frame], score: Callable[[np.ndarray, tuple[int, int]], np.ndarray],
               block_size: int, full_fraction: float, num_classes: int) -> float:
    """mIoU of frames with FULL labels in the best-scored blocks and LOW labels elsewhere."""
    cm = ConfusionMatrix(num_classes)
    for image, truth, full, low in frames:
        s = score(image, BlockGrid(*truth.shape, block_size).shape)
        chosen = top_blocks(s, round(full_fraction * s.size))
        cm.update(mix_blocks(full, low, chosen, block_size), truth, CAMVID_IGNORE_INDEX)
    return 100.0 * cm.mean_iou()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="swiftnet_lite0")
    p.add_argument("--weights", default=None, help="network weights (default: the registry's)")
    p.add_argument("--data-root", type=Path, default=None, help="CamVid root")
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--full-fraction", type=float, default=0.25,
                   help="FULL share at which val is reported")
    p.add_argument("--ridge", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--subset", type=int, default=None, help="first N frames of each split")
    p.add_argument("--out", type=Path, default=None,
                   help="scorer JSON (default: beside --weights as <weights>.policy.json, "
                        "where the engines find it; without --weights the package's "
                        "policy_<model>.json)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from seg_accel_ros.datasets.camvid import CamVid

    torch.set_flush_denormal(True)
    set_cpu_threads(args.threads)
    model = inference_model(args.model, args.weights)
    dense, blocks = DenseEngine(model), BlockEngine(model, args.block_size)
    b, k = args.block_size, model.spec.num_classes

    def split(name: str) -> list[Frame]:
        data = CamVid(name, args.data_root)
        n = min(len(data), args.subset or len(data))
        return full_and_low([data[i] for i in range(n)], dense, blocks)

    train = split("train")
    gain_maps = [block_gain(full, low, truth, b, CAMVID_IGNORE_INDEX)
                 for _, truth, full, low in train]
    feats = np.concatenate([block_features(f[0], g.shape, b)
                            for f, g in zip(train, gain_maps, strict=True)])
    gains = np.concatenate([g.ravel() for g in gain_maps])
    sha = file_sha256(model.weights) if Path(model.weights).is_file() else ""
    scorer = fit_scorer(feats, gains, args.ridge, args.model, sha)
    out = args.out or (sidecar_scorer_path(args.weights) if args.weights
                       else scorer_path(args.model))
    scorer.save(out)
    print(f"scorer trained on {len(train)} CamVid train frames ({len(gains)} blocks): {out}")

    val = split("val")
    cheap = ComplexityPolicy(block_size=b)
    rows = {
        "dense": mixed_miou(val, lambda im, s: np.ones(s), b, 1.0, k),
        "all LOW": mixed_miou(val, lambda im, s: np.ones(s), b, 0.0, k),
        "cheap signals": mixed_miou(val, lambda im, s: cheap.scores(im, s), b,
                                    args.full_fraction, k),
        "learned scorer": mixed_miou(val, lambda im, s: scorer.predict(im, s, b), b,
                                     args.full_fraction, k),
    }
    print(f"CamVid val, {args.full_fraction:.0%} FULL blocks, the rest LOW (labels mixed, "
          "no previous prediction):")
    for name, miou in rows.items():
        print(f"  {name:15s} {miou:6.2f} mIoU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
