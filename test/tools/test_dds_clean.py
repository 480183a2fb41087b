"""seg_accel_dds_clean: reports and frees the stale Fast DDS segments of a folder."""

from __future__ import annotations

import os
import time

from seg_accel_ros.tools.dds_clean import main


def _stale(folder, name="fastdds_00000000000000aa"):
    segment, lock = folder / name, folder / f"{name}_el"
    segment.write_bytes(b"\0" * 4096)
    lock.touch()
    old = time.time() - 60
    for path in (segment, lock):
        os.utime(path, (old, old))
    return segment


def test_it_lists_in_a_dry_run_and_removes_otherwise(tmp_path, capsys):
    segment = _stale(tmp_path)
    assert main(["--dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"stale {segment}" in out and "1 stale Fast DDS segments; would free" in out
    assert segment.exists()
    assert main(["--dir", str(tmp_path)]) == 0
    assert "1 stale Fast DDS segments; freed" in capsys.readouterr().out
    assert not segment.exists()


def test_a_folder_that_is_not_there_is_an_error(tmp_path, capsys):
    assert main(["--dir", str(tmp_path / "absent")]) == 2
    assert "is not a folder" in capsys.readouterr().err
