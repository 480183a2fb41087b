"""The node's parameter files read without ROS: which entries reach the node, and that the
shipped files hold only values the node accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.ros.parameters import NodeConfig
from seg_accel_ros.ros.params_file import (
    cpu_preset_file,
    engine_settings,
    node_only,
    params_file_text,
    read_params_file,
    shipped_params_file,
)

PROJECT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((PROJECT / "config").glob("*.yaml"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_the_presets_are_shipped_beside_the_default_file():
    assert {p.name for p in SHIPPED} >= {"seg_accel.yaml", "temporal_cpu.yaml",
                                         "temporal_cpu_720p.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_file_gives_a_valid_node_and_engine_configuration(path: Path):
    values = read_params_file(path)
    NodeConfig.from_values(values)
    EngineConfig(**engine_settings(values))


@pytest.mark.parametrize("name", ["temporal_cpu.yaml", "temporal_cpu_720p.yaml"])
def test_the_cpu_presets_reuse_whole_frames_computed_by_the_plain_network(name: str):
    settings = engine_settings(read_params_file(PROJECT / "config" / name))
    assert settings["mode"] == "temporal"
    assert settings["reuse_granularity"] == "frame"
    assert settings["full_fraction"] == 1.0


def test_the_node_entries_override_the_wildcard_ones_and_other_nodes_are_left_out(tmp_path):
    path = _write(tmp_path, """
/front/seg_accel_node:
  ros__parameters:
    max_reuse_frames: 6
/**:
  ros__parameters:
    mode: temporal
    max_reuse_frames: 2
    use_sim_time: true
camera_driver:
  ros__parameters:
    exposure: 12
""")
    assert read_params_file(path) == {"mode": "temporal", "max_reuse_frames": 6,
                                      "use_sim_time": True}
    assert read_params_file(path, node_name="other") == {"mode": "temporal",
                                                         "max_reuse_frames": 2,
                                                         "use_sim_time": True}


def test_engine_settings_keep_the_engine_fields_as_the_node_types_them():
    values = {"full_fraction": 1, "reuse_threshold": 8, "max_reuse_frames": 4,
              "qos_depth": 3, "use_sim_time": False}
    settings = engine_settings(values)
    assert settings == {"full_fraction": 1.0, "reuse_threshold": 8.0, "max_reuse_frames": 4}
    assert isinstance(settings["full_fraction"], float)
    assert isinstance(settings["max_reuse_frames"], int)
    assert node_only(values) == ["qos_depth", "use_sim_time"]


@pytest.mark.parametrize(("text", "reason"), [
    ("/**:\n  ros__parameters:\n    max_reuse_frame: 4\n", "unknown parameter 'max_reuse_frame'"),
    ("/**:\n  ros__parameters:\n    full_fraction: 1.5\n", "full_fraction must be <= 1.0"),
    ("/**:\n  ros__parameters:\n    mode: fast\n", "mode must be one of"),
    ("/**:\n  ros__parameters:\n    use_sim_time: 1\n", "use_sim_time must be true or false"),
    ("/**:\n  parameters:\n    mode: dense\n", "no 'ros__parameters' mapping"),
    ("- mode: dense\n", "must map node names"),
    ("/**: [unclosed\n", "not valid YAML"),
])
def test_bad_files_are_refused_naming_the_file_and_the_entry(tmp_path, text, reason):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match="parameter file") as exc:
        read_params_file(path)
    assert reason in str(exc.value) and str(path) in str(exc.value)


def test_every_bad_entry_is_named_at_once(tmp_path):
    path = _write(tmp_path, "/**:\n  ros__parameters:\n    block_size: 100\n    qos_depth: 0\n")
    with pytest.raises(ValueError) as exc:
        read_params_file(path)
    assert "block_size" in str(exc.value) and "qos_depth" in str(exc.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read parameter file .*missing.yaml"):
        read_params_file(tmp_path / "missing.yaml")


def test_the_shipped_files_are_found_by_name_and_others_are_not():
    assert shipped_params_file("temporal_cpu.yaml") == PROJECT / "config" / "temporal_cpu.yaml"
    assert shipped_params_file("no_such_preset.yaml") is None


def test_the_cpu_preset_is_chosen_by_the_frame_size():
    assert cpu_preset_file(480 * 360).name == "temporal_cpu.yaml"
    assert cpu_preset_file(640 * 480).name == "temporal_cpu.yaml"
    assert cpu_preset_file(960 * 540).name == "temporal_cpu_720p.yaml"
    assert cpu_preset_file(1280 * 720).name == "temporal_cpu_720p.yaml"


def test_a_written_file_reads_back_as_the_node_types_its_values(tmp_path):
    values = {"mode": "temporal", "reuse_threshold": 8, "weights": "", "max_reuse_frames": 3,
              "autostart": True, "palette": (0, 0, 0, 255, 255, 255)}
    text = params_file_text(values, ["tuned on drive.mp4", "", "x: y"])
    assert text.startswith("# tuned on drive.mp4\n#\n# x: y\n/**:\n")
    assert "reuse_threshold: 8.0" in text  # rcl would type a written 8 as an integer
    back = read_params_file(_write(tmp_path, text))
    assert back == {**values, "reuse_threshold": 8.0, "palette": [0, 0, 0, 255, 255, 255]}
    assert isinstance(back["reuse_threshold"], float) and back["weights"] == ""


def test_writing_refuses_every_value_the_node_would_reject():
    with pytest.raises(ValueError, match="max_reuse_frames must be >= 0.*unknown parameter"):
        params_file_text({"max_reuse_frames": -1, "no_such_parameter": 1})
