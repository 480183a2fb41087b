"""``seg_accel_demo`` (``make demo``): the node segmenting a real street video through ROS 2.

Runs a live evaluation (:mod:`seg_accel_ros.tools.live_eval`): seg_accel_node and a bag replay
in their own processes on a private DDS domain, this process watching the node's outputs like
any subscriber would. Leaves an overlay video, the report (HTML, Markdown, JSON) with its plots
and per-frame records, printing where they are. The input defaults to OpenCV's street-scene
sample video from Debian's opencv-doc (generated frames when that cannot be fetched);
``--input`` takes any video file, image folder or rosbag2. In temporal mode on a CPU the node
gets the shipped preset for the frame size unless ``--params`` names another file (or none).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from seg_accel_ros.demo_input import street_video
from seg_accel_ros.engine.config import ENGINE_MODES, EngineConfig
from seg_accel_ros.evaluation.outputs import OverlayVideo, SampleFrames, sample_indices
from seg_accel_ros.evaluation.report import build_report, format_summary, write_report_dir
from seg_accel_ros.evaluation.sources import EvalSource, is_bag, open_eval_source
from seg_accel_ros.frame_sources import video_fps
from seg_accel_ros.models.registry import get_spec
from seg_accel_ros.ros.params_file import cpu_preset_file
from seg_accel_ros.tools.eval import engine_settings_from
from seg_accel_ros.tools.live_eval import run_live

DEMO_DEFAULTS = {"model": "swiftnet_lite0", "weights": "", "mode": "temporal"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options of the demo."""
    ap = argparse.ArgumentParser(prog="seg_accel_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--input", default="", help="video file, image folder or rosbag2 "
                                                 "(default: street video, else generated)")
    ap.add_argument("--out", default="out/demo", help="output folder")
    ap.add_argument("--frames", type=int, default=120, help="frames to publish")
    ap.add_argument("--rate", type=float, default=0.0, help="camera rate of a video or folder "
                                                            "(default: the video's, at most "
                                                            "15 Hz)")
    ap.add_argument("--width", type=int, default=640, help="resize the input (0: as is)")
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--params", default=None, metavar="FILE",
                    help="the node's ROS 2 parameter file: its engine parameters; --model, "
                         "--weights, --mode and --set override it. Default, in temporal mode on "
                         "a CPU: the shipped preset for the frame size (config/temporal_cpu.yaml "
                         "up to 640x480, config/temporal_cpu_720p.yaml above); 'none': the "
                         "node's own defaults")
    ap.add_argument("--model", default=None, help="registered model (default swiftnet_lite0)")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--mode", default=None, choices=ENGINE_MODES,
                    help="engine mode (default temporal: REUSE and computed frames, or blocks "
                         "with --params none)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="any other engine setting, as seg_accel_eval's (e.g. "
                         "max_reuse_frames=2); repeatable")
    return ap.parse_args(argv)


def resolve_input(spec: str) -> str:
    """The input to play: ``spec``, else the street video, else 'generated'."""
    if spec:
        if not Path(spec).exists():
            raise SystemExit(f"seg_accel_demo: no video file or image folder at {spec}")
        return spec
    video = street_video()
    if video is None:
        print("street video unavailable (no apt-get download); using generated frames")
        return "generated"
    return str(video)


def camera_rate(source: str, requested: float) -> float | None:
    """Frames per second to stamp a video or folder with (None: a bag keeps its own)."""
    if requested:
        return requested
    if source != "generated" and is_bag(Path(source)):
        return None
    own = video_fps(source) if source != "generated" else 0.0
    return min(15.0, own or 10.0)


def engine_config(args: argparse.Namespace, params: str | None) -> EngineConfig:
    """The node's engine configuration from the demo's defaults, ``params`` and the command
    line (SystemExit with the reason if any of them is bad)."""
    try:
        settings, unused = engine_settings_from(
            DEMO_DEFAULTS, params,
            {"model": args.model, "weights": args.weights, "mode": args.mode}, args.set)
        config = EngineConfig(**settings)
    except ValueError as exc:
        raise SystemExit(f"seg_accel_demo: {exc}") from None
    if unused:
        print(f"seg_accel_demo: {params}: not passed to the demo's node: {', '.join(unused)}")
    return config


def preset_for(config: EngineConfig, args: argparse.Namespace,
               source: EvalSource) -> Path | None:
    """The CPU preset the demo applies when no ``--params`` is given and it runs temporal mode
    on a CPU: the shipped file for the frame size."""
    if args.params is not None or config.mode != "temporal" or config.device != "cpu":
        return None
    return cpu_preset_file(source.frame_pixels())


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0 when the node produced labels."""
    args = parse_args(argv)
    started = time.monotonic()
    params = None if args.params in (None, "none") else args.params
    config = engine_config(args, params)  # bad options fail before the input is fetched
    spec = resolve_input(args.input)
    size = (args.width, args.height) if args.width and args.height else None
    try:
        source = open_eval_source(spec, size=size, fps=camera_rate(spec, args.rate),
                                  generated_count=args.frames)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"seg_accel_demo: {exc}") from None
    preset = preset_for(config, args, source)
    if preset is not None:
        params = str(preset)
        config = engine_config(args, params)
    if params is not None:
        print(f"seg_accel_demo: engine parameters from {params}")
    out = Path(args.out)
    palette = get_spec(config.model).palette
    video = OverlayVideo(out / "overlay.mp4", min(source.rate_hz or 10.0, 15.0), palette)
    samples = SampleFrames(sample_indices(source.expected_frames(args.frames)))
    print(f"seg_accel_demo: {args.frames} frames of {source.description} "
          f"({source.timing}) through seg_accel_node")
    try:
        evaluation = run_live(source, config, max_frames=args.frames,
                              reference=config.mode != "dense", sinks=[video, samples],
                              log_dir=out / "logs", say=lambda t: print(f"seg_accel_demo: {t}"))
    finally:
        video.close()
    report = build_report(evaluation)
    report["wall_time_s"] = round(time.monotonic() - started, 1)
    report["files"] = {"overlay_video": str(video.path)} if video.frames else {}
    files = write_report_dir(evaluation, report, out, samples)
    print(format_summary(report))
    print(f"wall time       {report['wall_time_s']} s")
    for key in ("overlay_video", "html", "markdown", "json", "records_jsonl"):
        if key in files:
            print(f"{key:<15} {files[key]}")
    print(f"plots           {out / 'plots'}")
    return 0 if evaluation.runs[0].scorer.frames else 1


if __name__ == "__main__":
    raise SystemExit(main())
