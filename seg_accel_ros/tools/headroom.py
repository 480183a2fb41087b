"""``seg_accel_headroom``: the accuracy any REUSE / LOW / block policy can at best keep, measured
on a network and a video (see :mod:`seg_accel_ros.evaluation.headroom`).

Examples::

    seg_accel_headroom ../shared/data/video/highway_1280x720_25fps.mp4 --max-frames 30
    seg_accel_headroom camvid:test --full-fraction 0.25 --json out/headroom_test.json
    seg_accel_headroom camvid:temporal --model cgnet \\
        --weights ../shared/models/cgnet_m3n21_camvid.pth
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from seg_accel_ros.engine.factory import (
    EngineError,
    inference_model,
    resolve_device,
    set_cpu_threads,
)
from seg_accel_ros.evaluation.headroom import SCHEDULE_SHARES, measure_headroom
from seg_accel_ros.evaluation.report import write_json
from seg_accel_ros.evaluation.sources import open_eval_source
from seg_accel_ros.models.registry import ModelLoadError


def _shares(text: str) -> tuple[float, ...]:
    try:
        shares = tuple(float(v) for v in text.split(","))
    except ValueError:
        shares = ()
    if not shares or not all(0.0 < v <= 1.0 for v in shares):
        raise argparse.ArgumentTypeError(f"expected shares in (0, 1] like 0.5,0.3, got {text!r}")
    return shares


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seg_accel_headroom",
        description="Upper bounds on the accuracy of block acceleration for a network on a "
                    "video: dense labels against the previous frame's moved by the motion "
                    "(REUSE), the best agreement any schedule of computed and REUSE frames "
                    "reaches (schedule), the LOW path against dense (LOW), and with labels the "
                    "best mIoU any choice of FULL blocks reaches (policy).")
    p.add_argument("source", help="rosbag2, video file, image folder or camvid:SPLIT / "
                                  "camvid:temporal")
    p.add_argument("--model", default="swiftnet_lite0")
    p.add_argument("--weights", default=None, help="weights file (default: the registry's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--block-size", type=int, default=128)
    p.add_argument("--full-fraction", type=float, default=0.25,
                   help="share of FULL blocks for the policy bound")
    p.add_argument("--motion-downscale", type=int, default=4,
                   help="optical flow on frames downscaled this many times (as the engine)")
    p.add_argument("--max-reuse-frames", type=int, default=8,
                   help="longest REUSE run the schedule bound considers")
    p.add_argument("--schedule-shares", type=_shares, default=SCHEDULE_SHARES, metavar="S,S",
                   help="shares of computed frames at which to give the schedule bound")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--json", metavar="PATH", help="write the figures as one JSON object")
    return p


def format_headroom(report: dict) -> str:
    """The figures as a few readable lines."""
    reuse, low = report["reuse_ceiling"], report["low_ceiling"]
    lines = [f"{report['model']} on {report['source']} ({report['frames']} frames, "
             f"{report['rate_hz']:.1f} Hz, {report['block_size']}-px blocks)"]
    if reuse.get("pairs"):
        lines.append(f"  REUSE ceiling: dense vs previous dense moved by the motion "
                     f"{reuse['agreement']:.1%} agreement (unmoved {reuse['agreement_unmoved']:.1%}"
                     f", worst pair {reuse['worst_pair']:.1%}, {reuse['pairs']} pairs)")
    if low["agreement"] is not None:
        lines.append(f"  LOW ceiling:   LOW path vs dense {low['agreement']:.1%} agreement")
    schedule = report.get("schedule_bound")
    if schedule and schedule["frames"] > 1:
        lines.append(f"  schedule bound: the best agreement any choice of computed frames "
                     f"reaches (REUSE runs of at most {schedule['max_run']} frames), and fixed "
                     f"runs")
        lines.append(f"    {'schedule':<20}{'computed':>9}{'agreement':>11}{'mIoU vs dense':>15}")
        rows = [("best", row) for row in schedule["best"]]
        rows += [(f"max_reuse_frames {row['max_reuse_frames']}", row) for row in schedule["fixed"]]
        for name, row in rows:
            figures = ("  n/a: too few to reach every frame" if row["agreement"] is None else
                       f"{row['agreement']:11.2%}{row['miou_vs_dense']:15.1%}")
            lines.append(f"    {name:<20}{row['computed_share']:9.1%}{figures}")
    bound = report.get("policy_bound")
    if bound:
        m = {k: f"{100 * v:.2f}" for k, v in bound["miou"].items()}
        lines.append(f"  policy bound at {bound['full_fraction']:.0%} FULL (mIoU): dense "
                     f"{m['dense']}, all LOW {m['all_low']}, best imitation policy "
                     f"{m['oracle_imitation']}, ground-truth oracle {m['oracle_ground_truth']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.block_size < 8 or not 0.0 <= args.full_fraction <= 1.0
            or not 0 <= args.max_reuse_frames <= 64):
        print("error: --block-size must be >= 8, --full-fraction in [0, 1] and "
              "--max-reuse-frames in 0..64", file=sys.stderr)
        return 2
    set_cpu_threads(args.threads)
    torch.set_flush_denormal(True)
    try:
        source = open_eval_source(args.source)
        model = inference_model(args.model, args.weights, resolve_device(args.device))
    except (FileNotFoundError, ValueError, EngineError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not model.trained:
        print(f"warning: model {args.model} has no trained weights (give --weights): these "
              "figures describe an untrained network", file=sys.stderr)
    with torch.inference_mode():
        report = measure_headroom(source, model, args.block_size, args.full_fraction,
                                  args.motion_downscale, args.max_frames,
                                  args.max_reuse_frames, args.schedule_shares)
    print(format_headroom(report))
    if args.json:
        print(f"JSON: {write_json(args.json, report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
