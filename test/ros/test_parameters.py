"""Parameter specs: every value a user can set is validated with a reason."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import yaml

from seg_accel_ros.ros.parameters import PARAMS, SPECS, NodeConfig

PROJECT = Path(__file__).resolve().parents[2]


def test_defaults_form_a_valid_config():
    config = NodeConfig.from_values({})
    assert config.model == "swiftnet_lite0"
    assert config.mode == "dense"


@pytest.mark.parametrize("name, value", [
    ("color_alpha", math.nan), ("color_alpha", -0.1), ("color_alpha", math.inf),
    ("max_pixels", 0), ("max_pixels", 1.5), ("max_pixels", True), ("qos_depth", 0),
    ("mode", "sparse"), ("input_transport", "theora"), ("device", "gpu"),
    ("device", "cuda:x"), ("palette", [1, 2]), ("palette", [0, 0, 256]),
    ("warmup_size", [10]), ("model", ""), ("num_threads", -1),
])
def test_bad_values_have_a_reason(name, value):
    reason = SPECS[name].check(value)
    assert reason and name in reason
    with pytest.raises(ValueError, match=name):
        NodeConfig.from_values({name: value})


def test_integers_are_accepted_for_floats():
    assert SPECS["color_alpha"].check(1) is None


def test_config_file_documents_every_parameter_with_valid_defaults():
    data = yaml.safe_load((PROJECT / "config" / "seg_accel.yaml").read_text())
    values = data["/**"]["ros__parameters"]
    assert set(values) == {p.name for p in PARAMS}
    NodeConfig.from_values(values)
    text = (PROJECT / "config" / "seg_accel.yaml").read_text()
    for spec in PARAMS:
        if spec.read_only:
            block = text.split(f"    {spec.name}:")[0].rsplit("\n    #", 1)[-1]
            assert "read-only" in block, f"{spec.name} is read-only but not documented as such"


def test_readme_documents_every_parameter():
    readme = (PROJECT / "README.md").read_text()
    missing = [p.name for p in PARAMS if f"`{p.name}`" not in readme]
    assert not missing


def test_launch_file_declares_the_documented_arguments():
    tree = ast.parse((PROJECT / "launch" / "seg_accel.launch.py").read_text())
    declared = {call.args[0].value for call in ast.walk(tree)
                if isinstance(call, ast.Call) and getattr(call.func, "id", "")
                == "DeclareLaunchArgument"}
    assert {"image", "namespace", "params_file", "autostart"} <= declared
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert {"LifecycleNode", "OnStateTransition", "ChangeState"} <= names
