"""``seg_accel_bench``: speed benchmarks that print ratios measured in one run.

    seg_accel_bench --suite node --json out/bench_node.json
"""

from __future__ import annotations

import argparse

from seg_accel_ros.tools.reporting import format_table, write_json

SUITES = ("node",)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="seg_accel_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=SUITES, required=True)
    ap.add_argument("--json", metavar="PATH", help="write every printed figure as JSON")
    ap.add_argument("--model", default="swiftnet_lite0")
    ap.add_argument("--duration", type=float, default=30.0, help="node suite: seconds of input")
    ap.add_argument("--rate", type=float, default=30.0, help="node suite: input rate (Hz)")
    ap.add_argument("--size", default="1280x720", help="node suite: WIDTHxHEIGHT")
    ap.add_argument("--encoding", default="rgb8")
    ap.add_argument("--source", default="", help="video/folder (default: highway clip or "
                                                  "generated frames)")
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.suite == "node":
        from seg_accel_ros.tools.node_bench import run_node_bench

        report = run_node_bench(args.duration, args.rate, width, height, args.model,
                                args.source, args.encoding)
    print(format_table([(k, v) for k, v in report.items()], f"seg_accel_bench --suite "
                       f"{args.suite}"))
    if args.json:
        print(f"JSON: {write_json(args.json, report)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
