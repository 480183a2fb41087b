"""What importing a module pulls in, checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "rclpy", "numpy")


def heavy_modules_loaded_by(module: str) -> list[str]:
    """Which of torch, rclpy and numpy a fresh ``import module`` loads."""
    probe = (f"import sys, {module}; "
             f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    return out.split(",") if out else []
