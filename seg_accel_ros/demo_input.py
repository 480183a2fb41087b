"""The demo's default input: OpenCV's street-scene sample video from Debian's opencv-doc.

Fetched without root (`apt-get download` + `dpkg -x`) into a user cache; ``None`` when that is
not possible (no apt, no network), and the demo falls back to generated frames.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DEB_PACKAGE = "opencv-doc"
MEMBER = "usr/share/doc/opencv-doc/examples/data/vtest.avi"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seg_accel_ros"


def street_video(timeout: float = 300.0) -> Path | None:
    """Path of vtest.avi (a real 768x576 street scene), fetching it once; None if unavailable."""
    target = cache_dir() / "vtest.avi"
    if target.is_file() and target.stat().st_size > 0:
        return target
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(["apt-get", "download", DEB_PACKAGE], cwd=tmp, check=True,
                           capture_output=True, timeout=timeout)
            debs = list(Path(tmp).glob(f"{DEB_PACKAGE}_*.deb"))
            if not debs:
                return None
            subprocess.run(["dpkg", "-x", str(debs[0]), str(Path(tmp) / "x")], check=True,
                           capture_output=True, timeout=timeout)
        except (subprocess.SubprocessError, OSError):
            return None
        source = Path(tmp) / "x" / MEMBER
        if not source.is_file():
            return None
        shutil.copyfile(source, target)
    return target
