"""Free the shared memory of Fast DDS participants whose processes were killed.

    seg_accel_dds_clean [--dry-run] [--dir /dev/shm]

A node, a test or a tool killed with SIGKILL leaves its 16 MB Fast DDS segment in /dev/shm
(``seg_accel_ros.ros.dds_shm``). Segments of live processes are never touched.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from seg_accel_ros.ros.dds_shm import SHM_DIR, remove_stale_segments


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="seg_accel_dds_clean",
        description="Remove the Fast DDS shared-memory segments of processes that are gone "
                    "(the rule of `fastdds shm clean`: nobody holds the segment's lock).")
    parser.add_argument("--dir", type=Path, default=SHM_DIR,
                        help="shared-memory folder (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the stale segments, remove nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dir.is_dir():
        print(f"seg_accel_dds_clean: {args.dir} is not a folder", file=sys.stderr)
        return 2
    stale = remove_stale_segments(args.dir, dry_run=args.dry_run)
    for segment in stale:
        print(f"{'stale' if args.dry_run else 'removed'} {segment.path} "
              f"({segment.bytes / 2**20:.1f} MB)")
    verb = "would free" if args.dry_run else "freed"
    print(f"{len(stale)} stale Fast DDS segments; {verb} "
          f"{sum(s.bytes for s in stale) / 2**20:.1f} MB in {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
