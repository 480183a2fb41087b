"""``seg_accel_demo`` (``make demo``): the node segmenting a real street video through ROS 2.

Starts seg_accel_node and a camera publisher in their own processes on a private DDS domain,
watches the node's outputs like any subscriber would, and leaves an overlay video, a sample
frame and a report, printing where they are. The input defaults to OpenCV's street-scene
sample video from Debian's opencv-doc (generated frames when that cannot be fetched);
``--input`` takes any video file or image folder.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from seg_accel_ros import image_codec
from seg_accel_ros.demo_input import street_video
from seg_accel_ros.frame_sources import video_fps
from seg_accel_ros.tools.live import LivePipeline
from seg_accel_ros.tools.node_bench import diagnostic_values
from seg_accel_ros.tools.reporting import format_table, write_json
from seg_accel_ros.visualization import PATH_COLORS, colorize, palette_lut

REPORTED_DIAGNOSTICS = (
    "frames_received", "frames_processed", "frames_dropped", "frames_lost", "frames_rejected",
    "latency_p50_ms", "latency_p95_ms", "inference_p50_ms", "overhead_p95_ms", "path_full",
    "path_low", "path_reuse", "device", "weights")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="seg_accel_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--input", default="", help="video file or image folder (default: street "
                                                 "video, else generated frames)")
    ap.add_argument("--out", default="out/demo", help="output folder")
    ap.add_argument("--frames", type=int, default=120, help="frames to publish")
    ap.add_argument("--rate", type=float, default=0.0, help="camera rate (default: the "
                                                            "video's, capped at 15 Hz)")
    ap.add_argument("--width", type=int, default=640, help="resize the input (0: as is)")
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--model", default="swiftnet_lite0")
    ap.add_argument("--weights", default="")
    ap.add_argument("--mode", default="dense", choices=("dense", "blocks", "temporal"))
    return ap.parse_args(argv)


def resolve_input(spec: str) -> str:
    if spec:
        if not Path(spec).exists():
            raise SystemExit(f"seg_accel_demo: no video file or image folder at {spec}")
        return spec
    video = street_video()
    if video is None:
        print("street video unavailable (no apt-get download); using generated frames")
        return "generated"
    return str(video)


def compose(rgb: np.ndarray, color: np.ndarray, path_map: np.ndarray) -> np.ndarray:
    """Input | labels blended over the input | block paths, side by side (BGR for video)."""
    overlay = cv2.addWeighted(rgb, 0.45, color, 0.55, 0.0)
    paths = colorize(path_map, palette_lut(PATH_COLORS))
    return cv2.cvtColor(np.hstack((rgb, overlay, paths)), cv2.COLOR_RGB2BGR)


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    args = parse_args(argv)
    source = resolve_input(args.input)
    rate = args.rate or min(15.0, video_fps(source) or 10.0) if source != "generated" else (
        args.rate or 10.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inputs: dict[tuple[int, int], np.ndarray] = {}
    colors: dict[tuple[int, int], np.ndarray] = {}
    paths: dict[tuple[int, int], np.ndarray] = {}
    diagnostics: list[dict[str, str]] = []

    def keep(store):
        def callback(msg) -> None:
            store[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = np.array(
                image_codec.to_rgb8(msg) if store is not paths else image_codec.decode_image(msg))
        return callback

    params = {"model": args.model, "mode": args.mode, "weights": f'"{args.weights}"'}
    if args.width and args.height:
        params["warmup_size"] = f"[{args.height}, {args.width}]"
    pipeline = LivePipeline(params, log_dir=out / "logs")
    rclpy.init()
    probe = rclpy.create_node("seg_accel_demo")
    probe.create_subscription(Image, "image", keep(inputs), 50)
    probe.create_subscription(Image, "/seg_accel_node/labels_color", keep(colors), 10)
    probe.create_subscription(Image, "/seg_accel_node/path_map", keep(paths), 10)
    probe.create_subscription(DiagnosticArray, "/diagnostics",
                              lambda m: diagnostics.append(diagnostic_values(m) or {}), 10)
    started = time.monotonic()
    try:
        with pipeline:
            print(f"seg_accel_demo: starting the node ({args.model}, {args.mode}) ...")
            pipeline.wait_until_active(probe)
            print(f"seg_accel_demo: publishing {args.frames} frames of {source} at {rate:g} Hz")
            pipeline.start_camera(source, rate, args.frames, args.width, args.height,
                                  reliable=True, subscribers=2)  # the node and this demo
            while pipeline.camera_running():
                rclpy.spin_once(probe, timeout_sec=0.05)
            settle = time.monotonic() + 5.0
            while time.monotonic() < settle:
                rclpy.spin_once(probe, timeout_sec=0.05)
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
    stamps = sorted(set(colors) & set(paths) & set(inputs))
    video_path = out / "overlay.mp4"
    if stamps:
        h, w = inputs[stamps[0]].shape[:2]
        writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"),
                                 max(1.0, min(rate, 10.0)), (3 * w, h))
        for stamp in stamps:
            writer.write(compose(inputs[stamp], colors[stamp], paths[stamp]))
        writer.release()
        middle = stamps[len(stamps) // 2]
        cv2.imwrite(str(out / "sample.png"), compose(inputs[middle], colors[middle],
                                                     paths[middle]))
    last = next((d for d in reversed(diagnostics) if d), {})
    report = {
        "input": source, "model": args.model, "mode": args.mode, "camera_rate_hz": rate,
        "frames_published": len(pipeline.published_stamps()),
        "frames_segmented_received": len(stamps),
        **{k: last.get(k) for k in REPORTED_DIAGNOSTICS},
        "wall_time_s": round(time.monotonic() - started, 1),
        "overlay_video": str(video_path) if stamps else None,
        "sample_frame": str(out / "sample.png") if stamps else None,
        "logs": str(pipeline.log_dir),
    }
    write_json(out / "report.json", report)
    print(format_table(list(report.items()), "seg_accel_demo"))
    print(f"\noverlay video: {video_path}\nreport: {out / 'report.json'}")
    return 0 if stamps else 1


if __name__ == "__main__":
    raise SystemExit(main())
