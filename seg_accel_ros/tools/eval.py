"""``seg_accel_eval``: accuracy, fidelity to the dense network, speed and path mix of an engine
on a rosbag2, a video, an image folder or CamVid.

Examples::

    seg_accel_eval --dataset camvid --split test --model cgnet \\
        --weights ../shared/models/cgnet_m3n21_camvid.pth --json cgnet_test.json
    seg_accel_eval ../shared/data/video/highway_1280x720_25fps.mp4 --mode blocks \\
        --max-frames 60 --report out/eval_highway --video out/eval_highway/overlay.mp4
    seg_accel_eval camvid:temporal --mode blocks --sweep full_fraction=0.1,0.25,0.5 \\
        --report out/sweep
    seg_accel_eval drive.mcap --live --report out/live --labels-bag out/live_labels
    seg_accel_eval drive.mp4 --params config/temporal_cpu_720p.yaml   # the node's settings

Offline (default): every frame through the engine and, in the same run, through the dense
network, for the speed ratio and the fidelity; deterministic. ``--live``: through the real node
over DDS at the recorded rate, measuring latency and drops. Prints a summary and, with
``--json PATH``, writes every printed figure as one JSON object; ``--report DIR`` writes the
same as Markdown and HTML pages with plots and per-frame records. This module is only the CLI:
the work is in :mod:`seg_accel_ros.evaluation`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seg_accel_ros.datasets.camvid import SPLITS
from seg_accel_ros.engine.config import ENGINE_MODES, EngineConfig
from seg_accel_ros.engine.factory import EngineError
from seg_accel_ros.evaluation.offline import Evaluation, FrameSink, run_offline
from seg_accel_ros.evaluation.outputs import LabelsBag, OverlayVideo, SampleFrames, sample_indices
from seg_accel_ros.evaluation.report import (
    build_report,
    format_summary,
    frame_records,
    write_json,
    write_records,
    write_report_dir,
)
from seg_accel_ros.evaluation.sources import EvalSource, open_eval_source
from seg_accel_ros.models.registry import (
    ModelLoadError,
    builds_untrained,
    get_spec,
    list_models,
)
from seg_accel_ros.ros.params_file import engine_settings, node_only, read_params_file

DATASETS = ("camvid",)
SOURCE_HELP = ("bag folder / .mcap / .db3, video file, image folder, 'generated', or "
               "camvid:SPLIT[/SEQ[:FIRST-LAST]] / camvid:temporal")
FIXED_FIELDS = ("model", "weights", "device")  # one dense reference: same network throughout
# the engine settings of seg_accel_eval when neither --params nor an option gives them
EVAL_DEFAULTS: dict[str, Any] = {"model": "swiftnet_lite0", "weights": "", "device": "cpu",
                                 "mode": "dense", "num_threads": 0, "full_fraction": 0.25,
                                 "block_size": 128}


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``seg_accel_eval``."""
    p = argparse.ArgumentParser(
        prog="seg_accel_eval",
        description="Evaluate a segmentation engine on a rosbag2, a video, an image folder or "
                    "CamVid: accuracy against labels, fidelity and speed against the dense "
                    "network, latency, path mix; optional report, plots, overlay video and "
                    "labels bag.")
    p.add_argument("source", nargs="?", default=None,
                   help=f"{SOURCE_HELP} (default: --dataset/--split)")
    src = p.add_argument_group("input")
    src.add_argument("--dataset", default=None, choices=DATASETS,
                     help="dataset when no SOURCE is given (default: camvid)")
    src.add_argument("--split", default=None, choices=SPLITS,
                     help="its split (default: test)")
    add_source_options(src)
    src.add_argument("--max-frames", "--limit", dest="max_frames", type=int, default=None,
                     metavar="N", help="evaluate only the first N frames")
    eng = p.add_argument_group("engine (options and --set override --params)")
    eng.add_argument("--params", default=None, metavar="FILE",
                     help="the node's ROS 2 parameter file (e.g. config/temporal_cpu.yaml): "
                          "its engine parameters")
    eng.add_argument("--model", default=None,
                     help=f"registered model ({', '.join(list_models())}; default "
                          f"{EVAL_DEFAULTS['model']})")
    eng.add_argument("--weights", default=None, help="weights file (default: the model's own)")
    eng.add_argument("--mode", default=None,
                     help=f"engine mode ({', '.join(ENGINE_MODES)}; default dense)")
    eng.add_argument("--full-fraction", type=float, default=None,
                     help="share of blocks at full resolution (default 0.25)")
    eng.add_argument("--block-size", type=int, default=None,
                     help="block side in input pixels (default 128)")
    eng.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                     help="any other engine setting (EngineConfig field); repeatable")
    eng.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cpu)")
    eng.add_argument("--threads", type=int, default=None,
                     help="CPU threads for torch and OpenCV (default 0: their own choice)")
    run = p.add_argument_group("run")
    run.add_argument("--sweep", default=None, metavar="FIELD=V1,V2,...",
                     help="evaluate one configuration per value (e.g. full_fraction=0.1,0.25)")
    run.add_argument("--no-reference", action="store_true",
                     help="do not run the dense network (no speed ratio, no fidelity)")
    run.add_argument("--cpu-time", action="store_true",
                     help="time engines in process CPU time, not wall time (steadier on a "
                          "shared machine, with --threads 1)")
    run.add_argument("--live", action="store_true",
                     help="through the real node over DDS at the recorded rate")
    run.add_argument("--rate", type=float, default=None,
                     help="--live: replay speed factor (default 1: the recorded rate)")
    out = p.add_argument_group("output")
    out.add_argument("--json", default=None, metavar="PATH", help="write the report as JSON")
    out.add_argument("--report", default=None, metavar="DIR",
                     help="write report.md/.html/.json, plots and per-frame records here")
    out.add_argument("--records", default=None, metavar="PATH",
                     help="per-frame records as JSON lines (.jsonl) or CSV (.csv)")
    out.add_argument("--video", default=None, metavar="PATH",
                     help="overlay video (mp4): input | labels overlay | path map")
    out.add_argument("--labels-bag", default=None, metavar="PATH",
                     help="rosbag2 (mcap) of labels, labels_color and path_map, input stamps")
    out.add_argument("--samples", type=int, default=3, help="sample frames in the report")
    out.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    return p


def add_source_options(group: argparse._ArgumentGroup) -> None:
    """The options that describe the input, as ``open_eval_source`` takes them."""
    group.add_argument("--data-root", default=None,
                       help="CamVid folder (default: $SEG_ACCEL_CAMVID or "
                            "../shared/data/camvid)")
    group.add_argument("--labels", default=None, metavar="DIR",
                       help="labels of an image folder (same file names; default: "
                            "FOLDERannot)")
    group.add_argument("--topic", default=None,
                       help="image topic of a bag (default: the first)")
    group.add_argument("--fps", type=float, default=None,
                       help="frame rate of a video / image folder (default: its own, or 30)")
    group.add_argument("--resize", default=None, metavar="WxH", type=parse_size,
                       help="resize frames (labels by nearest neighbour)")


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480) (an argparse error when bad or below 16x16)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return w, h


def parse_value(name: str, text: str) -> Any:
    """A string as the type of EngineConfig field ``name`` (ValueError if unknown or bad)."""
    defaults = {f.name: f.default for f in dataclasses.fields(EngineConfig)}
    if name not in defaults:
        raise ValueError(f"unknown engine setting {name!r}; known: {', '.join(defaults)}")
    kind = type(defaults[name])
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} takes true or false, got {text!r}")
        return text.lower() in ("true", "1")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name} takes a {kind.__name__}, got {text!r}") from None


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` items (``--set``) as EngineConfig fields (ValueError if bad)."""
    settings: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes FIELD=VALUE, got {item!r}")
        name = name.strip().replace("-", "_")
        settings[name] = parse_value(name, value.strip())
    return settings


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """'full_fraction=0.1,0.25' -> ('full_fraction', [0.1, 0.25])."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not values.strip():
        raise ValueError(f"--sweep takes FIELD=V1,V2,..., got {text!r}")
    if name in FIXED_FIELDS:
        raise ValueError(f"cannot sweep {name}: the dense reference is one network")
    return name, [parse_value(name, v.strip()) for v in values.split(",") if v.strip()]


def engine_settings_from(defaults: Mapping[str, Any], params: str | None,
                         options: Mapping[str, Any], items: Sequence[str]
                         ) -> tuple[dict[str, Any], list[str]]:
    """EngineConfig fields, later sources winning: a tool's ``defaults``, the engine
    parameters of the node's parameter file ``params``, the command line's ``options`` (None:
    not given) and ``--set`` ``items``; and the file's parameters that only the node reads
    (ValueError if any source is bad)."""
    base = dict(defaults)
    unused: list[str] = []
    if params:
        values = read_params_file(params)
        base.update(engine_settings(values))
        unused = node_only(values)
    base.update({k: v for k, v in options.items() if v is not None})
    base.update(parse_settings(items))
    return base, unused


def engine_configs(args: argparse.Namespace) -> tuple[list[EngineConfig], list[str], str | None]:
    """The configurations to evaluate, their names, and the swept field (ValueError if bad)."""
    options = {"model": args.model, "weights": args.weights, "device": args.device,
               "mode": args.mode, "num_threads": args.threads,
               "full_fraction": args.full_fraction, "block_size": args.block_size}
    base, unused = engine_settings_from(EVAL_DEFAULTS, args.params, options, args.set)
    if unused and not args.quiet:
        print(f"seg_accel_eval: {args.params}: only the node reads these, not used here: "
              f"{', '.join(unused)}", file=sys.stderr)
    if not args.sweep:
        return [EngineConfig(**base)], [base["mode"]], None
    name, values = parse_sweep(args.sweep)
    configs = [EngineConfig(**{**base, name: v}) for v in values]
    return configs, [f"{name}={v}" for v in values], name


def open_source(args: argparse.Namespace) -> EvalSource:
    """The input the arguments name."""
    return open_source_with_options(
        args.source or f"{args.dataset or 'camvid'}:{args.split or 'test'}", args)


def open_source_with_options(spec: str, args: argparse.Namespace) -> EvalSource:
    """``spec`` opened as :func:`add_source_options`'s options and ``--max-frames`` say."""
    return open_eval_source(spec, size=args.resize, fps=args.fps, topic=args.topic,
                            labels_dir=args.labels, camvid_root=args.data_root,
                            generated_count=args.max_frames)


def make_sinks(args: argparse.Namespace, source: EvalSource, palette: Sequence[Sequence[int]]
               ) -> tuple[list[FrameSink], SampleFrames | None]:
    """Overlay video, labels bag and sample frames the arguments ask for."""
    sinks: list[FrameSink] = []
    if args.video:
        sinks.append(OverlayVideo(args.video, source.rate_hz or 10.0, palette))
    if args.labels_bag:
        sinks.append(LabelsBag(args.labels_bag, palette, frame_id=source.frame_id))
    samples = None
    if args.report and args.samples > 0:
        samples = SampleFrames(sample_indices(source.expected_frames(args.max_frames),
                                              args.samples))
        sinks.append(samples)
    return sinks, samples


def evaluate_args(args: argparse.Namespace, configs: list[EngineConfig], names: list[str],
                  source: EvalSource, sinks: Sequence[FrameSink]) -> Evaluation:
    """Run the offline or live evaluation the arguments ask for."""
    reference = not args.no_reference and any(c.mode != "dense" for c in configs)
    if args.live:
        from seg_accel_ros.tools.live_eval import run_live

        def say(text: str) -> None:
            if not args.quiet:
                print(f"seg_accel_eval: {text}", file=sys.stderr, flush=True)

        return run_live(source, configs[0], max_frames=args.max_frames, reference=reference,
                        rate=args.rate or 1.0, sinks=sinks,
                        log_dir=Path(args.report) / "logs" if args.report else None, say=say)
    return run_offline(source, configs, names, reference=reference,
                       max_frames=args.max_frames, sinks=sinks,
                       progress=None if args.quiet else print_progress,
                       clock=time.process_time if args.cpu_time else time.perf_counter)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``seg_accel_eval``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_frames is not None and args.max_frames < 1:
        parser.error("--max-frames must be >= 1")
    if args.live and (args.sweep or args.cpu_time):
        parser.error("--sweep and --cpu-time are for offline runs; leave out --live")
    if args.rate is not None and not args.live:
        parser.error("--rate is the replay speed of --live; offline runs take every frame")
    if args.rate is not None and not 0.0 < args.rate <= 100.0:
        parser.error("--rate must be in (0, 100]")
    if args.source and (args.dataset or args.split):
        parser.error("--dataset and --split name the input when no SOURCE is given; "
                     f"SOURCE {args.source} is given (CamVid splits: camvid:SPLIT)")
    try:
        configs, names, sweep_name = engine_configs(args)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    if not args.live and any(c.pipelined for c in configs):
        parser.error("pipelined: which labels a frame gets depends on when it arrives; "
                     "evaluate it at the camera's rate with --live")
    try:
        model, weights = configs[0].model, configs[0].weights
        spec = get_spec(model)
        if builds_untrained(model, weights):
            print(f"seg_accel_eval: warning: no --weights given and model {model!r} has "
                  "no default weights: evaluating its initialisation", file=sys.stderr)
        source = open_source(args)
        sinks, samples = make_sinks(args, source, spec.palette)
        try:
            evaluation = evaluate_args(args, configs, names, source, sinks)
        finally:
            for sink in sinks:
                sink.close()
    except ImportError as exc:
        print(f"seg_accel_eval: error: --live needs ROS 2 (rclpy): {exc}", file=sys.stderr)
        return 1
    except (ModelLoadError, EngineError, RuntimeError, ValueError, OSError) as exc:
        # the node exiting or not activating in --live mode is a RuntimeError / TimeoutError
        print(f"seg_accel_eval: error: {exc}", file=sys.stderr)
        return 1
    report = build_report(evaluation, sweep_name)
    files = report.setdefault("files", {})
    if args.video:
        files["video"] = args.video
    if args.labels_bag:
        files["labels_bag"] = args.labels_bag
    if args.records:
        files["records"] = str(write_records(args.records, frame_records(evaluation)))
    if args.report:
        write_report_dir(evaluation, report, args.report, samples)
    print(format_summary(report))
    if args.json:
        write_json(args.json, report)
        print(f"report written to {args.json}")
    for key, path in files.items():
        print(f"{key:<16} {path}")
    return 0


def print_progress(done: int, total: int | None) -> None:
    """Frames done so far, every 20 frames and at the end, on stderr."""
    if done == total or done % 20 == 0:
        print(f"  {done}/{total or '?'} frames", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
