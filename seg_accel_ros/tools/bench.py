"""``seg_accel_bench``: speed benchmarks that print ratios measured in one run.

    seg_accel_bench --suite node --json out/bench_node.json
    seg_accel_bench --suite blocks --threads 1 --cpu-time --json out/bench_blocks.json
    seg_accel_bench --suite temporal --threads 1 --cpu-time --json out/bench_temporal.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seg_accel_ros.runtime import keep_large_buffers_in_heap, keep_onednn_primitives

SUITES = ("node", "blocks", "temporal", "soak")
DEFAULT_MODEL = "swiftnet_lite0"
PRECISIONS = {"fp32": "float32", "fp16": "float16"}  # torch dtype names
_NODE_OPTIONS = {"duration", "rate", "size", "encoding", "mode", "source", "model", "set",
                 "params"}
SUITE_OPTIONS = {  # the options each suite reads (besides --suite and --json)
    "node": _NODE_OPTIONS,
    "soak": _NODE_OPTIONS,
    "blocks": {"model", "size", "source", "fractions", "repeats", "block_size", "threads",
               "cpu_time", "stage", "block_machinery", "default_allocator", "device",
               "precision"},
    "temporal": {"models", "thresholds", "highway_frames", "shared", "set", "block_size",
                 "threads", "cpu_time", "default_allocator"},
}


def ignored_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """The options given a value that ``args.suite`` would not read."""
    reads = SUITE_OPTIONS[args.suite] | {"suite", "json"}
    return [f"--{name.replace('_', '-')}" for name, value in vars(args).items()
            if name not in reads and value != parser.get_default(name)]


def run_blocks_bench(args: argparse.Namespace, height: int, width: int) -> dict:
    """Block engine time / dense time at each FULL fraction, same frame, one process."""
    import time

    import torch

    from seg_accel_ros.engine.blocks.timing import time_ratios
    from seg_accel_ros.engine.factory import set_cpu_threads

    set_cpu_threads(args.threads)
    fractions = [float(f) for f in args.fractions.split(",")]
    device, dtype = torch.device(args.device), getattr(torch, PRECISIONS[args.precision])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {args.device}: CUDA is not available here")
    if (device.type != "cpu" or dtype != torch.float32) and (
            args.stage != "logits" or args.cpu_time):
        raise SystemExit("error: --device other than cpu and --precision fp16 time the "
                         "network's logits on the wall clock: add --stage logits, "
                         "leave out --cpu-time")
    image, source = None, "random normalised input"
    if args.stage == "labels":
        from seg_accel_ros.frame_sources import open_source
        from seg_accel_ros.tools.node_bench import SHARED_VIDEO

        source = args.source or (str(SHARED_VIDEO) if SHARED_VIDEO.is_file() else "generated")
        image = next(open_source(source, (width, height)))
    model = args.model or DEFAULT_MODEL
    curve = time_ratios(model, (height, width), fractions, args.repeats, args.block_size,
                        clock=time.process_time if args.cpu_time else time.perf_counter,
                        dense_single_path=not args.block_machinery, stage=args.stage,
                        image=image, device=str(device), dtype=dtype)
    report: dict = {"suite": "blocks", "model": model, "input": f"{width}x{height}",
                    "device": torch.cuda.get_device_name(device) if device.type == "cuda"
                    else "cpu", "precision": args.precision,
                    "allocator": "glibc defaults" if args.default_allocator else "node settings",
                    "stage": args.stage, "frame": source,
                    "block_size": args.block_size, "threads": torch.get_num_threads(),
                    "clock": "process CPU time" if args.cpu_time else "wall time",
                    "dense_ms": 1e3 * next(iter(curve.values()))["dense_s"]}
    for f, row in curve.items():
        report[f"ratio_full_{f:g}"] = row["ratio"]
    report["curve"] = {f"{f:g}": {"block_ms": 1e3 * r["block_s"], "ratio": r["ratio"],
                                     "min_ratio": r["min_ratio"], "path_mix_full": f,
                                     "path_mix_low": 1 - f, "dense_fallbacks": r["fallbacks"]}
                       for f, r in curve.items()}
    return report


def run_temporal_suite(args: argparse.Namespace) -> dict:
    import time

    import torch

    from seg_accel_ros.engine.factory import set_cpu_threads
    from seg_accel_ros.tools.eval import parse_settings
    from seg_accel_ros.tools.temporal_bench import run_temporal_bench

    try:
        settings = parse_settings(args.set)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if settings.get("pipelined"):
        raise SystemExit("error: the temporal suite runs frames back to back; measure "
                         "pipelined through the node (--suite node --set pipelined=true)")
    torch.set_flush_denormal(True)
    set_cpu_threads(args.threads)
    return run_temporal_bench(
        args.models.split(","), Path(args.shared), args.block_size,
        time.process_time if args.cpu_time else time.perf_counter,
        [float(t) for t in args.thresholds.split(",")], args.highway_frames, settings)


def node_settings(args: argparse.Namespace) -> tuple[str, str, dict[str, object]]:
    """The node suites' model, mode and other node parameters: ``--params FILE``'s, then
    ``--model`` / ``--mode``, then ``--set`` (the later win). The file's ``autostart`` and
    ``use_sim_time`` are left out: the suite starts the node itself, on the wall clock."""
    from seg_accel_ros.ros.params_file import FLAGS, read_params_file

    params: dict[str, object] = {}
    if args.params:
        try:
            params = read_params_file(args.params)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
    model = str(args.model or params.get("model", DEFAULT_MODEL))
    mode = str(args.mode or params.get("mode", "dense"))
    # as the YAML text `-p NAME:=VALUE` takes (JSON is YAML): '' stays a string
    rest = {k: json.dumps(v) for k, v in params.items() if k not in ("model", "mode", *FLAGS)}
    return model, mode, {**rest, **node_parameters(args.set)}


def node_parameters(items: list[str]) -> dict[str, object]:
    """``--set NAME=VALUE`` items as node parameters, passed as ``-p NAME:=VALUE`` (the node
    parses and validates them)."""
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"error: --set takes NAME=VALUE, got {item!r}")
        params[name] = value
    return params


def main(argv: list[str] | None = None) -> int:
    # Before torch starts threads, as in the node's process (seg_accel_ros.ros.process).
    if "--default-allocator" not in (sys.argv[1:] if argv is None else argv):
        keep_large_buffers_in_heap()
    keep_onednn_primitives()
    from seg_accel_ros.engine.blocks.timing import STAGES
    from seg_accel_ros.engine.config import ENGINE_MODES
    from seg_accel_ros.tools.reporting import format_table, write_json
    from seg_accel_ros.tools.temporal_bench import summary_rows

    # No abbreviations: --default-allocator is read from argv above, before parsing.
    ap = argparse.ArgumentParser(prog="seg_accel_bench", description=__doc__.splitlines()[0],
                                 allow_abbrev=False)
    ap.add_argument("--suite", choices=SUITES, required=True)
    ap.add_argument("--json", metavar="PATH", help="write every printed figure as JSON")
    ap.add_argument("--model", default=None,
                    help=f"network (default {DEFAULT_MODEL}; node and soak suites: or the "
                         "--params file's)")
    ap.add_argument("--params", default=None, metavar="FILE",
                    help="node and soak suites: the node's ROS 2 parameter file (e.g. "
                         "config/temporal_cpu_720p.yaml); --model, --mode and --set win over it")
    ap.add_argument("--duration", type=float, default=30.0, help="node suite: seconds of input")
    ap.add_argument("--rate", type=float, default=30.0, help="node suite: input rate (Hz)")
    ap.add_argument("--size", default="1280x720", help="node and blocks suites: WIDTHxHEIGHT")
    ap.add_argument("--encoding", default="rgb8")
    ap.add_argument("--mode", choices=ENGINE_MODES, default=None,
                    help="node and soak suites: the node's engine mode (default dense, or the "
                         "--params file's)")
    ap.add_argument("--source", default="", help="video/folder (default: highway clip or "
                                                  "generated frames)")
    ap.add_argument("--fractions", default="0,0.1,0.2,0.25,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0",
                    help="blocks suite: FULL fractions of the curve")
    ap.add_argument("--repeats", type=int, default=5, help="blocks suite: timed rounds")
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch and OpenCV CPU threads (0: their defaults)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="blocks suite: time with this process's CPU time (steady on a shared "
                         "machine; pair with --threads 1)")
    ap.add_argument("--stage", choices=STAGES, default="labels",
                    help="blocks suite: time frame -> labels and confidence with each engine's "
                         "process (what the node runs; default) or the network's logits "
                         "assembled into a dense map")
    ap.add_argument("--device", default="cpu",
                    help="blocks suite: cpu or cuda[:N] (off the CPU: the logits stage, wall "
                         "time after a synchronisation)")
    ap.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                    help="blocks suite: the network's floating-point type (fp16: on CUDA)")
    ap.add_argument("--block-machinery", action="store_true",
                    help="blocks suite: run single-path frames through the block code too")
    ap.add_argument("--models", default="swiftnet_lite0,cgnet",
                    help="temporal suite: networks to measure")
    ap.add_argument("--thresholds", default="0,1,1.5,2.5,4,6,10",
                    help="temporal suite: reuse_threshold values of the trade-off curve")
    ap.add_argument("--highway-frames", type=int, default=100,
                    help="temporal suite: frames of the 720p highway clip")
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[3] / "shared"),
                    help="temporal suite: the folder holding data/camvid and data/video")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="temporal suite: EngineConfig field for every temporal engine "
                         "(e.g. --set keyframe_interval=12); node and soak suites: a node "
                         "parameter (e.g. --set reuse_granularity=frame)")
    ap.add_argument("--default-allocator", action="store_true",
                    help="keep glibc's allocator defaults instead of the node's settings "
                         "(to see what the settings change)")
    args = ap.parse_args(argv)
    ignored = ignored_options(args, ap)
    if ignored:
        ap.error(f"{', '.join(ignored)}: not read by --suite {args.suite}")
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.suite == "temporal":
        report = run_temporal_suite(args)
        print("\n".join(summary_rows(report)))
    elif args.suite == "blocks":
        report = run_blocks_bench(args, height, width)
    elif args.suite == "soak":
        from seg_accel_ros.tools.soak_bench import run_soak_bench

        model, mode, params = node_settings(args)
        report = run_soak_bench(args.duration, args.rate, width, height, model, args.source,
                                args.encoding, mode, params)
    elif args.suite == "node":
        from seg_accel_ros.tools.node_bench import run_node_bench

        model, mode, params = node_settings(args)
        report = run_node_bench(args.duration, args.rate, width, height, model, args.source,
                                args.encoding, mode, node_params=params)
    # the temporal suite's per-network figures are the lines above; the JSON keeps them all
    rows = [(k, v) for k, v in report.items()
            if args.suite != "temporal" or not isinstance(v, dict) or k == "settings"]
    print(format_table(rows, f"seg_accel_bench --suite {args.suite}"))
    if args.json:
        print(f"JSON: {write_json(args.json, report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
