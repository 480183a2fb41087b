"""``seg_accel_train``: train a registered network on CamVid train (never val or test).

Example (CPU, see docs/models/swiftnet_lite0.md for the recipe actually used)::

    seg_accel_train --model swiftnet_lite0 --epochs 40 --batch-size 8 --crop 288 288 \
        --out runs/swiftnet_lite0 --export seg_accel_ros/models/weights/swiftnet_lite0_camvid.pt

Validation mIoU on CamVid val is only logged (and picks the exported checkpoint); it is never
trained on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from seg_accel_ros.models.registry import get_spec, load_state_dict_file
from seg_accel_ros.training.consistency import PairBatches, PairCrop, VideoPairs
from seg_accel_ros.training.data import AugmentedSegmentation, Subset, SyntheticScenes
from seg_accel_ros.training.loop import (
    TrainConfig,
    Trainer,
    limit_opencv_threads,
    seed_everything,
)
from seg_accel_ros.training.losses import build_loss
from seg_accel_ros.training.transforms import ColorJitter, TrainTransform


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="seg_accel_train", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="swiftnet_lite0", help="registered model name")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, nargs=2, default=(384, 384), metavar=("H", "W"))
    p.add_argument("--scale", type=float, nargs=2, default=(0.5, 2.0), metavar=("MIN", "MAX"),
                   help="random scale range")
    p.add_argument("--lr", type=float, default=4e-4, help="decoder learning rate")
    p.add_argument("--encoder-lr-ratio", type=float, default=0.25)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--schedule", choices=("poly", "cosine"), default="cosine")
    p.add_argument("--warmup", type=float, default=0.02, help="fraction of training")
    p.add_argument("--loss", choices=("ohem", "ce", "balanced"), default="ohem")
    p.add_argument("--low-weight", type=float, default=0.0,
                   help="weight of the same loss on the LOW path (the network on the 2x2-"
                        "averaged crop, upsampled); exported weights then maximise the mean "
                        "of the dense and LOW val mIoU")
    p.add_argument("--freeze-bn", action="store_true",
                   help="fine-tuning: BatchNorm normalises with the starting weights' running "
                        "statistics and does not update them")
    p.add_argument("--consistency-video", type=Path, nargs="+", default=(), metavar="VIDEO",
                   help="unlabelled driving clips: pairs of frames 1-2 apart, with their optical "
                        "flow, for the temporal consistency loss")
    p.add_argument("--consistency-weight", type=float, default=30.0,
                   help="weight of the temporal consistency loss (with --consistency-video): "
                        "each frame's class probabilities against the earlier frame's, moved "
                        "by the flow")
    p.add_argument("--consistency-batch", type=int, default=2, help="video pairs per step")
    p.add_argument("--consistency-crop", type=int, nargs=2, default=(320, 448),
                   metavar=("H", "W"))
    p.add_argument("--color-jitter", type=float, default=0.0, metavar="S",
                   help="random brightness, contrast and saturation factors in [1-S, 1+S] and "
                        "gamma in [1-S/2, 1+S/2], for CamVid crops (and video pairs, unless "
                        "--pair-color-jitter is given)")
    p.add_argument("--pair-color-jitter", type=float, default=None, metavar="S",
                   help="the same jitter for both frames of a video pair, of its own strength "
                        "(0: none); default: --color-jitter's")
    p.add_argument("--exposure-change", type=float, default=0.0, metavar="E",
                   help="with --consistency-video and a pair jitter (--color-jitter or "
                        "--pair-color-jitter): the earlier frame of a video pair is up to a "
                        "factor 1+-E brighter or darker than the later one")
    p.add_argument("--workers", type=int, default=2, help="data loader worker processes")
    p.add_argument("--repeats", type=int, default=1,
                   help="passes over the train set per epoch, each augmented afresh (on a GPU: "
                        "fewer loader restarts, checkpoints and validations)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log)")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="CKPT",
                   help="continue from CKPT (default OUT/last.pt when it exists)")
    p.add_argument("--init", type=Path, default=None,
                   help="start from these weights (state dict or checkpoint), new schedule; "
                        "they are validated first, so exported weights never score lower")
    p.add_argument("--export", type=Path, default=None,
                   help="keep the best (else latest) weights exported here as fp16")
    p.add_argument("--val-every", type=int, default=5, help="epochs between val mIoU; 0: never")
    p.add_argument("--time-budget", type=float, default=None, metavar="MIN",
                   help="wall-time budget in minutes: the schedule ends when it is spent")
    p.add_argument("--checkpoint-every", type=float, default=5.0, metavar="MIN")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--no-amp", action="store_true", help="no fp16 autocast on CUDA")
    p.add_argument("--data", choices=("camvid", "synthetic"), default="camvid")
    p.add_argument("--data-root", type=Path, default=None, help="CamVid root")
    p.add_argument("--subset", type=int, default=None, help="use the first N train images")
    p.add_argument("--val-subset", type=int, default=None, help="use the first N val images")
    args = p.parse_args(argv)
    if args.repeats < 1:  # before the data and the clips' flows, which take a minute
        raise SystemExit(f"--repeats must be at least 1, got {args.repeats}")
    return args


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"device {name!r} requested but CUDA is not available")
    return device


def build_training_model(name: str, init: Path | None = None) -> torch.nn.Module:
    """The registered network with its training initialisation (ImageNet encoder if any)."""
    spec = get_spec(name)
    build = spec.extra.get("build_pretrained", spec.build)
    model = build()
    if init is not None:
        state = load_state_dict_file(init, spec.extract_state_dict)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in state.items()}, strict=True)
    return model


def load_data(args: argparse.Namespace) -> tuple[Sequence, Sequence | None]:
    """(train samples, val samples or None)."""
    if args.data == "synthetic":
        train, val = SyntheticScenes(count=16, seed=0), SyntheticScenes(count=4, seed=1)
    else:
        from seg_accel_ros.datasets.camvid import CamVid

        train = CamVid("train", args.data_root)
        val = CamVid("val", args.data_root) if args.val_every else None
    if args.subset:
        train = Subset(train, args.subset)
    if val is not None:
        val = Subset(val, args.val_subset) if args.val_subset else val
        val = [val[i] for i in range(len(val))]  # decoded once, reused at every validation
    return train, val


def load_pairs(args: argparse.Namespace) -> PairBatches | None:
    """The consistency loss's video pairs, or None without ``--consistency-video``."""
    if not args.consistency_video:
        if args.exposure_change:
            raise SystemExit("--exposure-change changes the video pairs of "
                             "--consistency-video, and none is given")
        return None
    try:  # checked before the clips' flows, which take a minute
        option = "--color-jitter" if args.pair_color_jitter is None else "--pair-color-jitter"
        color = color_jitter(pair_jitter_strength(args), option)
        crop = PairCrop(crop=tuple(args.consistency_crop), color=color,
                        exposure=args.exposure_change)
    except ValueError as exc:
        raise SystemExit(f"--exposure-change: {exc}") from exc
    try:
        pairs = VideoPairs.from_files(args.consistency_video)
    except ValueError as exc:
        raise SystemExit(f"--consistency-video: {exc}") from exc
    print(f"consistency: {len(pairs)} frame pairs from {len(args.consistency_video)} clip(s)",
          flush=True)
    return PairBatches(pairs, crop, args.consistency_batch, args.seed)


def pair_jitter_strength(args: argparse.Namespace) -> float:
    """``--pair-color-jitter``, or ``--color-jitter`` when it is not given."""
    return args.color_jitter if args.pair_color_jitter is None else args.pair_color_jitter


def color_jitter(strength: float, option: str = "--color-jitter") -> ColorJitter | None:
    """The colour jitter of this strength, or None when it is 0; ``option`` names it in errors."""
    try:
        return ColorJitter.of_strength(strength) if strength else None
    except ValueError as exc:
        raise SystemExit(f"{option}: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_flush_denormal(True)
    limit_opencv_threads()  # before any cv2 call: forked loader workers must not touch its pool
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    device = pick_device(args.device)
    spec = get_spec(args.model)
    model = build_training_model(args.model, args.init).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    train, val = load_data(args)
    pairs = load_pairs(args)
    transform = TrainTransform(crop=tuple(args.crop), scale_range=tuple(args.scale),
                               color=color_jitter(args.color_jitter))
    train_set = AugmentedSegmentation(train, transform, seed=args.seed, repeats=args.repeats)
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        encoder_lr_ratio=args.encoder_lr_ratio, weight_decay=args.weight_decay,
        schedule=args.schedule, warmup=args.warmup, workers=args.workers, seed=args.seed,
        val_every=args.val_every,
        time_budget_s=args.time_budget * 60 if args.time_budget else None,
        max_steps=args.max_steps, log_every=args.log_every,
        checkpoint_every_s=args.checkpoint_every * 60, amp=not args.no_amp,
        low_weight=args.low_weight, freeze_bn=args.freeze_bn,
        consistency_weight=args.consistency_weight if pairs is not None else 0.0,
        validate_at_start=args.init is not None,
        extra={"model": args.model, "crop": list(args.crop), "scale": list(args.scale),
               "loss": args.loss, "color_jitter": args.color_jitter,
               "pair_color_jitter": pair_jitter_strength(args),
               "exposure_change": args.exposure_change, "data": args.data, "subset": args.subset,
               "consistency_video": [str(v) for v in args.consistency_video],
               "init": str(args.init) if args.init else None, "argv": list(argv or sys.argv[1:])},
    )
    trainer = Trainer(model, train_set, build_loss(args.loss).to(device), spec.preprocessing,
                      config, args.out, device, val_samples=val, num_classes=spec.num_classes,
                      export_path=args.export, stream=sys.stdout, pairs=pairs)
    if args.resume is not None:
        resumed = trainer.resume(args.resume or None)
        if not resumed and args.resume:
            raise SystemExit(f"cannot resume: {args.resume} not found")
    summary = trainer.fit()
    print(f"done: epoch {summary['epoch']}, step {summary['step']}, "
          f"best val mIoU {summary['best_miou']}, {summary['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
