"""``seg_accel_tune``: the fastest whole-frame REUSE settings that keep a goal on your own
input, written as the node's parameter file.

Examples::

    seg_accel_tune drive.mp4 --out config/front_camera.yaml
    seg_accel_tune camvid:temporal --model cgnet \\
        --weights ../shared/models/cgnet_m3n21_camvid.pth --max-miou-drop 1.0 --out cgnet.yaml
    seg_accel_tune drive.mcap --sweep reuse_drift_budget=0.02,0.03,0.05,0.08 --out tuned.yaml

Every value of the swept setting (default ``max_reuse_frames``: 1, 2, 3, 4, 5, 6, 8) runs on
every frame beside the dense network, in one run (the measurement of ``seg_accel_eval
--sweep``). The other settings come from ``--params`` (default on a CPU: the shipped preset for
the frame size), the options and ``--set``. The file written holds the chosen settings and
every other value of the ``--params`` file; the node takes it as any parameter file::

    ros2 launch seg_accel_ros seg_accel.launch.py params_file:=tuned.yaml
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.factory import EngineError
from seg_accel_ros.evaluation.offline import run_offline
from seg_accel_ros.evaluation.report import build_report, write_json
from seg_accel_ros.evaluation.sources import EvalSource
from seg_accel_ros.evaluation.tuning import (
    DEFAULT_SWEEP,
    FRAME_REUSE,
    Candidate,
    TuneGoal,
    candidates_from,
    choose,
    tuned_settings,
)
from seg_accel_ros.models.registry import ModelLoadError, builds_untrained
from seg_accel_ros.ros.params_file import (
    cpu_preset_file,
    engine_settings,
    params_file_text,
    read_params_file,
)
from seg_accel_ros.tools.eval import (
    EVAL_DEFAULTS,
    SOURCE_HELP,
    add_source_options,
    open_source_with_options,
    parse_settings,
    parse_sweep,
    print_progress,
)

DEFAULT_OUT = "seg_accel_tuned.yaml"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``seg_accel_tune``."""
    p = argparse.ArgumentParser(
        prog="seg_accel_tune",
        description="Find the fastest whole-frame REUSE settings (temporal mode, computed "
                    "frames the plain network) that keep a goal on your own input, measured "
                    "against the dense network on the same frames, and write them as the "
                    "node's parameter file.")
    p.add_argument("source", help=SOURCE_HELP)
    src = p.add_argument_group("input")
    add_source_options(src)
    src.add_argument("--max-frames", type=int, default=None, metavar="N",
                     help="tune on the first N frames only")
    eng = p.add_argument_group("engine (options and --set override --params)")
    eng.add_argument("--params", default=None, metavar="FILE",
                     help="the node parameter file to start from ('none': the node's "
                          "defaults; default on a CPU: the shipped preset for the frame size)")
    eng.add_argument("--model", default=None, help="registered model (default swiftnet_lite0)")
    eng.add_argument("--weights", default=None, help="weights file (default: the model's own)")
    eng.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cpu)")
    eng.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                     help="any other engine setting, kept fixed; repeatable")
    eng.add_argument("--threads", type=int, default=None,
                     help="CPU threads while measuring (not written to the file)")
    goal = p.add_argument_group("goal")
    goal.add_argument("--min-agreement", type=float, default=TuneGoal.min_agreement,
                      metavar="PCT", help="pixels equal to the dense network's labels, percent "
                                          f"(default {TuneGoal.min_agreement:g})")
    goal.add_argument("--max-miou-drop", type=float, default=TuneGoal.max_miou_drop,
                      metavar="POINTS", help="mIoU below dense, where the input has labels "
                                             f"(default {TuneGoal.max_miou_drop:g})")
    run = p.add_argument_group("run")
    name, values = DEFAULT_SWEEP
    run.add_argument("--sweep", default=f"{name}={','.join(map(str, values))}",
                     metavar="FIELD=V1,V2,...", help="the setting to tune and its values "
                                                     "(default %(default)s)")
    run.add_argument("--cpu-time", action="store_true",
                     help="time in process CPU time, not wall time (steadier, with --threads 1)")
    out = p.add_argument_group("output")
    out.add_argument("--out", default=DEFAULT_OUT, metavar="FILE",
                     help="the parameter file to write (default %(default)s)")
    out.add_argument("--json", default=None, metavar="PATH",
                     help="the evaluation report and the choice as JSON")
    out.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    return p


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace
                ) -> tuple[TuneGoal, str, list[Any], dict[str, Any]]:
    """The goal, the swept field and values, and the ``--set`` settings (exits if bad)."""
    if args.max_frames is not None and args.max_frames < 1:
        parser.error("--max-frames must be >= 1")
    if not 0.0 <= args.min_agreement <= 100.0:
        parser.error(f"--min-agreement is a percentage (0..100), got {args.min_agreement:g}")
    if not args.max_miou_drop >= 0.0:
        parser.error(f"--max-miou-drop must be >= 0 mIoU points, got {args.max_miou_drop:g}")
    try:
        goal = TuneGoal(args.min_agreement, args.max_miou_drop)
        field, values = parse_sweep(args.sweep)
        fixed = parse_settings(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    if field in FRAME_REUSE:
        parser.error(f"{field} is {FRAME_REUSE[field]!r} in the family seg_accel_tune tunes "
                     "(whole-frame REUSE); sweep another setting")
    taken = sorted(set(fixed) & {*FRAME_REUSE, field})
    if taken:
        parser.error(f"--set {', '.join(taken)}: seg_accel_tune sets "
                     f"{', '.join(f'{k}={v}' for k, v in FRAME_REUSE.items())} and sweeps {field}")
    if not values:
        parser.error(f"--sweep {args.sweep}: no values")
    return goal, field, values, fixed


def base_file(args: argparse.Namespace, source: EvalSource, device: str) -> Path | None:
    """The parameter file the tuning starts from."""
    if args.params == "none":
        return None
    if args.params:
        return Path(args.params)
    return cpu_preset_file(source.frame_pixels()) if device == "cpu" else None


def starting_settings(args: argparse.Namespace, source: EvalSource, fixed: dict[str, Any],
                      say: Callable[[str], None]) -> tuple[Path | None, dict[str, Any],
                                                            dict[str, Any]]:
    """The starting file, its values, and the engine settings the tuned file will write (the
    file's, then the options, then ``--set``; the network always named)."""
    base = base_file(args, source, args.device or "cpu")
    file_values = read_params_file(base) if base is not None else {}
    given = {k: v for k, v in (("model", args.model), ("weights", args.weights),
                               ("device", args.device)) if v is not None}
    if given.get("weights"):
        given["weights"] = str(Path(given["weights"]).resolve())
    settings = {"model": EVAL_DEFAULTS["model"], **engine_settings(file_values), **given,
                **fixed}
    replaced = {k: v for k, v in settings.items() if k in FRAME_REUSE and v != FRAME_REUSE[k]}
    if replaced:
        say(f"{base}: {', '.join(f'{k}: {v}' for k, v in replaced.items())} replaced: "
            "seg_accel_tune tunes whole-frame REUSE")
    return base, file_values, settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``seg_accel_tune``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    goal, field, values, fixed = _check_args(parser, args)
    say = (lambda text: None) if args.quiet else (
        lambda text: print(f"seg_accel_tune: {text}", file=sys.stderr, flush=True))
    try:
        source = open_source_with_options(args.source, args)
        base, file_values, settings = starting_settings(args, source, fixed, say)
        measured = {**EVAL_DEFAULTS, **settings}
        if args.threads is not None:  # for the measurement only: the file keeps its own
            measured["num_threads"] = args.threads
        if measured.get("pipelined"):
            raise ValueError("pipelined: which labels a frame gets depends on when it arrives, "
                             "and seg_accel_tune runs frames one after the other; tune without "
                             "it (--set pipelined=false), then measure it with seg_accel_eval "
                             "--live")
        configs = [EngineConfig(**tuned_settings(measured, field, v)) for v in values]
        if builds_untrained(configs[0].model, configs[0].weights):
            say(f"warning: model {configs[0].model!r} has no trained weights here: tuning "
                "its initialisation")
        say(f"{source.description}: {len(values)} values of {field} beside the dense network"
            + (f" (starting from {base})" if base else ""))
        evaluation = run_offline(
            source, configs, [f"{field}={v}" for v in values], max_frames=args.max_frames,
            progress=None if args.quiet else print_progress,
            clock=time.process_time if args.cpu_time else time.perf_counter)
    except (ModelLoadError, EngineError, RuntimeError, ValueError, OSError) as exc:
        print(f"seg_accel_tune: error: {exc}", file=sys.stderr)
        return 1
    report = build_report(evaluation, field)
    dense_miou = (report["dense"] or {}).get("miou")
    candidates = candidates_from(report["sweep"]["rows"])
    chosen = choose(candidates, goal, dense_miou)
    print(format_choice(report, candidates, chosen, goal, field))
    outcome: dict[str, Any] = {"field": field, "goal": asdict(goal),
                               "chosen": None if chosen is None else chosen.value, "file": None}
    if chosen is not None:
        tuned = {**file_values, **tuned_settings(settings, field, chosen.value)}
        try:
            out = write_tuned_file(args.out, tuned,
                                   _comments(report, chosen, goal, field, argv))
        except (OSError, ValueError) as exc:
            print(f"seg_accel_tune: error: cannot write {args.out}: {exc}", file=sys.stderr)
            return 1
        outcome["file"] = str(out)
        print(f"written to {out}; run the node with it:\n"
              f"  ros2 launch seg_accel_ros seg_accel.launch.py params_file:={out.resolve()}")
    if args.json:
        write_json(args.json, {**report, "tool": "seg_accel_tune", "tune": outcome})
        print(f"report written to {args.json}")
    return 0 if chosen is not None else 1


def write_tuned_file(path: str | Path, values: dict[str, Any], comments: list[str]) -> Path:
    """Write the parameter file and read it back as the node will (ValueError if it could
    not take it)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(params_file_text(values, comments))
    read_params_file(out)
    return out


def format_choice(report: dict[str, Any], candidates: Sequence[Candidate],
                  chosen: Candidate | None, goal: TuneGoal, field: str) -> str:
    """The measured values, which keep the goal, and the choice, as text."""
    dense = report["dense"] or {}
    dense_miou = dense.get("miou")
    lines = [f"{report['dataset']}: {report['frames']} frames, dense "
             f"{dense.get('time_ms', {}).get('mean') or 0:.1f} ms per frame"
             + (f", mIoU {dense_miou:.2f}" if dense_miou is not None else ""),
             f"goal: {goal.describe(dense_miou is not None)}",
             f"{field:>18} {'throughput':>10} {'agreement':>9} {'mIoU':>7} {'computed':>8}  "
             "keeps the goal"]
    for cand, row in zip(candidates, report["sweep"]["rows"], strict=True):
        misses = cand.shortfalls(goal, dense_miou)
        lines.append(f"{cand.value!s:>18} {_x(cand.throughput_ratio):>10} "
                     f"{_num(cand.agreement, '%'):>9} {_num(cand.miou):>7} "
                     f"{_num(100 * row['path_mix']['full'], '%'):>8}  "
                     + ("yes" + (" (chosen)" if cand is chosen else "") if not misses
                        else "no: " + "; ".join(misses)))
    if chosen is not None and chosen is candidates[-1] and len(candidates) > 1:
        lines.append(f"the last value swept keeps the goal: values of {field} beyond it may "
                     "too (--sweep)")
    if chosen is None:
        best = max(candidates, key=lambda c: c.agreement or 0.0)
        lines.append(f"no value of {field} keeps the goal (the most faithful, {field}="
                     f"{best.value}, agrees in {_num(best.agreement, '%')}); nothing written. "
                     "Try values that compute more frames, or a looser goal.")
    return "\n".join(lines)


def _comments(report: dict[str, Any], chosen: Candidate, goal: TuneGoal, field: str,
              argv: Sequence[str] | None) -> list[str]:
    dense = report["dense"] or {}
    size = report.get("image_size")
    clock = "process CPU time" if report["time_clock"] == "cpu" else "wall time"
    figures = (f"{_x(chosen.throughput_ratio)} the dense throughput, "
               f"{_num(chosen.agreement, '%')} pixel agreement with dense")
    if dense.get("miou") is not None and chosen.miou is not None:
        figures += f", mIoU {chosen.miou:.2f} (dense {dense['miou']:.2f})"
    command = shlex.join(["seg_accel_tune", *(sys.argv[1:] if argv is None else argv)])
    return [f"Written by seg_accel_tune: whole-frame REUSE with {field}: {chosen.value},",
            f"the fastest value keeping {goal.describe(dense.get('miou') is not None)}",
            f"on {report['dataset']}: {report['frames']} frames"
            + (f" at {size[0]}x{size[1]}" if size else "") + ", measured against the dense",
            f"network on the same frames ({clock}): {figures}.",
            f"Command: {command}",
            "Use: ros2 launch seg_accel_ros seg_accel.launch.py params_file:=<this file>", ""]


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _num(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}"


if __name__ == "__main__":
    sys.exit(main())
