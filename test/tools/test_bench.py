"""``seg_accel_bench`` measures under the node's allocator settings, made before torch loads."""

from __future__ import annotations

import argparse
import json

import pytest
from imports import heavy_modules_loaded_by

from seg_accel_ros.tools.bench import main as bench_main


def test_the_bench_module_imports_no_torch_before_main_runs():
    assert heavy_modules_loaded_by("seg_accel_ros.tools.bench") == []


def test_the_probe_sees_what_a_module_loads():
    assert "torch" in heavy_modules_loaded_by("seg_accel_ros.engine.dense")


def test_default_allocator_runs_the_blocks_suite_under_glibc_defaults(tmp_path):
    out = tmp_path / "blocks.json"
    assert bench_main(["--suite", "blocks", "--size", "192x128", "--fractions", "0.5",
                       "--repeats", "1", "--source", "generated", "--default-allocator",
                       "--json", str(out)]) == 0
    assert json.loads(out.read_text())["allocator"] == "glibc defaults"


def test_an_abbreviated_default_allocator_flag_is_refused():
    with pytest.raises(SystemExit):
        bench_main(["--suite", "blocks", "--default-alloc"])


def test_set_items_become_node_parameters_as_written():
    from seg_accel_ros.tools.bench import node_parameters

    assert node_parameters(["reuse_granularity=frame", "reuse_threshold=8"]) == {
        "reuse_granularity": "frame", "reuse_threshold": "8"}
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        node_parameters(["reuse_threshold"])


def test_temporal_suite_settings_take_the_engine_fields_types(tmp_path):
    """``--set`` in the temporal suite is parsed like ``seg_accel_eval --set`` (strings,
    booleans, numbers by the field's type); pipelined, which needs paced frames, is refused."""
    out = tmp_path / "temporal.json"
    assert bench_main(["--suite", "temporal", "--shared", str(tmp_path), "--set",
                       "reuse_granularity=frame", "--set", "max_reuse_frames=3",
                       "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["settings"] == {"reuse_granularity": "frame", "max_reuse_frames": 3}
    assert "skipped" in report  # no CamVid segment or highway clip in that folder
    for bad, reason in (("pipelined=true", "--suite node"), ("bogus=1", "unknown engine")):
        with pytest.raises(SystemExit, match=reason):
            bench_main(["--suite", "temporal", "--shared", str(tmp_path), "--set", bad])


@pytest.mark.parametrize(("argv", "named"), [
    (["--suite", "temporal", "--size", "640x480"], "--size"),
    (["--suite", "node", "--threads", "1", "--cpu-time"], "--threads, --cpu-time"),
    (["--suite", "blocks", "--models", "cgnet"], "--models"),
    (["--suite", "soak", "--default-allocator"], "--default-allocator"),
])
def test_an_option_the_suite_does_not_read_is_refused_by_name(argv, named, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_main(argv)
    assert exc.value.code == 2
    assert f"{named}: not read by --suite {argv[1]}" in capsys.readouterr().err


def test_node_suites_take_a_parameter_file_under_the_options(tmp_path):
    from seg_accel_ros.tools.bench import node_settings

    path = tmp_path / "params.yaml"
    path.write_text("/**:\n  ros__parameters:\n    mode: temporal\n    model: cgnet\n"
                    "    weights: ''\n    reuse_threshold: 8.0\n    autostart: false\n"
                    "    reuse_granularity: frame\n    warmup_size: [360, 480]\n")

    model, mode, params = node_settings(argparse.Namespace(params=str(path), model=None,
                                                           mode=None, set=[]))
    assert (model, mode) == ("cgnet", "temporal")
    assert "autostart" not in params  # the suite starts the node itself
    assert params["reuse_threshold"] == "8.0" and params["weights"] == '""'
    model, mode, params = node_settings(argparse.Namespace(
        params=str(path), model="swiftnet_lite0", mode="dense", set=["reuse_threshold=4"]))
    assert (model, mode, params["reuse_threshold"]) == ("swiftnet_lite0", "dense", "4")
    # rcl reads the rendered values with their types, as the node's process would
    import rclpy
    from rclpy.node import Node

    args = ["--ros-args"] + [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    try:
        node = Node("params_probe", context=context,
                    automatically_declare_parameters_from_overrides=True)
        assert node.get_parameter("weights").value == ""
        assert node.get_parameter("reuse_granularity").value == "frame"
        assert list(node.get_parameter("warmup_size").value) == [360, 480]
        assert node.get_parameter("reuse_threshold").value == 4  # --set, parsed by rcl
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
