"""``seg_accel_eval``: accuracy (mIoU) and time per frame of a model on a labelled split.

Example::

    seg_accel_eval --dataset camvid --split test --model cgnet \\
        --weights ../shared/models/cgnet_m3n21_camvid.pth --json cgnet_test.json

Prints a summary and, with ``--json PATH``, writes every printed figure as one JSON object.
The evaluation itself lives in :mod:`seg_accel_ros.evaluation.evaluate`; this is only the CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from seg_accel_ros.datasets.camvid import SPLITS, CamVid
from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.factory import EngineError, build_engine
from seg_accel_ros.evaluation.evaluate import evaluate
from seg_accel_ros.models.classes import CAMVID_IGNORE_INDEX
from seg_accel_ros.models.registry import ModelLoadError, get_spec, list_models

DATASETS = ("camvid",)
AVAILABLE_MODES = ("dense", "blocks")  # the temporal engine plugs in here when it lands


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``seg_accel_eval``."""
    p = argparse.ArgumentParser(
        prog="seg_accel_eval",
        description="Evaluate a segmentation model on a labelled split: mIoU over the classes "
                    "(ignore label left out), pixel and class accuracy, time per frame.")
    p.add_argument("--dataset", default="camvid", choices=DATASETS, help="dataset (camvid)")
    p.add_argument("--split", default="test", choices=SPLITS, help="split (default: test)")
    p.add_argument("--data-root", default=None,
                   help="dataset folder (default: $SEG_ACCEL_CAMVID or ../shared/data/camvid)")
    p.add_argument("--model", required=True,
                   help=f"registered model name ({', '.join(list_models())})")
    p.add_argument("--weights", default=None, help="weights file (default: the model's own)")
    p.add_argument("--mode", default="dense",
                   help=f"engine mode; available: {', '.join(AVAILABLE_MODES)}")
    p.add_argument("--full-fraction", type=float, default=0.25,
                   help="blocks mode: share of blocks at full resolution (default 0.25)")
    p.add_argument("--block-size", type=int, default=128,
                   help="blocks mode: block side in input pixels (default 128)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (default 0: torch's own choice)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N frames")
    p.add_argument("--json", default=None, metavar="PATH", help="write the report as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``seg_accel_eval``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.mode not in AVAILABLE_MODES:
        parser.error(f"mode {args.mode!r} is not available yet; "
                     f"available: {', '.join(AVAILABLE_MODES)}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    try:
        config = EngineConfig(model=args.model, weights=args.weights or "", device=args.device,
                              mode=args.mode, num_threads=args.threads,
                              full_fraction=args.full_fraction, block_size=args.block_size)
    except ValueError as exc:
        parser.error(str(exc))

    try:
        if not args.weights and get_spec(args.model).default_weights is None:
            print(f"seg_accel_eval: warning: no --weights given and model {args.model!r} has "
                  "no default weights: evaluating its initialisation", file=sys.stderr)
        dataset = CamVid(args.split, args.data_root)
        engine = build_engine(config)
    except (ModelLoadError, EngineError, FileNotFoundError) as exc:
        print(f"seg_accel_eval: error: {exc}", file=sys.stderr)
        return 1

    report = evaluate(engine, dataset, ignore_index=CAMVID_IGNORE_INDEX, limit=args.limit,
                      progress=None if args.quiet else _progress)
    report.mode = args.mode
    report.dataset = f"{args.dataset}/{args.split}"
    print(report.summary())
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
        print(f"\nreport written to {path}")
    return 0


def _progress(done: int, total: int) -> None:
    if done == total or done % 20 == 0:
        print(f"  {done}/{total} frames", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
