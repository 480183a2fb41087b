"""Parameter specs: every value a user can set is validated with a reason."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

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
    assert {"image", "namespace", "params_file", "autostart", "use_sim_time"} <= declared
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert {"LifecycleNode", "OnStateTransition", "ChangeState"} <= names


# ------------------------------------------------------------------------------ fuzzing
# Every value rclpy can deliver (bool, int, float, str, lists of those, bytes) and then some.
# Subnormals off: torch.set_flush_denormal(True), set by inference code earlier in the same test
# process, makes hypothesis refuse to generate them.
FLOATS = st.floats(allow_subnormal=False)
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(), FLOATS, st.text(max_size=12), st.binary(max_size=8),
    st.lists(st.integers(-300, 300), max_size=9), st.lists(FLOATS, max_size=4),
    st.lists(st.text(max_size=3), max_size=3), st.lists(st.booleans(), max_size=3))
NUMERIC = [p for p in PARAMS if type(p.default) in (int, float)]


def _out_of_range(spec) -> st.SearchStrategy:
    """NaN, infinities, negatives, wrong types and values just or far outside the range."""
    low, high = spec.min_value, spec.max_value
    step = 1 if isinstance(spec.default, int) else 1e-6
    outside = st.one_of(st.floats(max_value=low - step, allow_subnormal=False, allow_nan=False),
                        st.floats(min_value=high + step, allow_subnormal=False, allow_nan=False))
    if isinstance(spec.default, int):
        outside = st.one_of(st.integers(max_value=int(low) - 1),
                            st.integers(min_value=int(high) + 1),
                            st.floats(allow_subnormal=False))  # any float is the wrong type
    return st.one_of(outside, st.sampled_from([math.nan, math.inf, -math.inf, -1e-9, True,
                                               False, "0.5", "", None, [1], b"\x01"]))


def test_every_numeric_parameter_has_a_range():
    assert {p.name for p in NUMERIC} >= {"num_threads", "block_size", "full_fraction",
                                         "qos_depth", "max_pixels", "diagnostics_period",
                                         "stats_window", "color_alpha", "warmup_frames"}
    assert all(p.min_value is not None and p.max_value is not None for p in NUMERIC)


@pytest.mark.parametrize("spec", NUMERIC, ids=lambda p: p.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_fuzz_bad_numbers_are_rejected_with_a_reason(spec, data):
    value = data.draw(_out_of_range(spec))
    reason = spec.check(value)
    assert reason and spec.name in reason, (value, reason)
    with pytest.raises(ValueError, match=spec.name):
        NodeConfig.from_values({spec.name: value})


@pytest.mark.parametrize("spec", NUMERIC, ids=lambda p: p.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_fuzz_numbers_in_range_are_accepted(spec, data):
    if isinstance(spec.default, int):
        value = data.draw(st.integers(int(spec.min_value), int(spec.max_value)))
        if spec.name == "block_size":
            value -= value % 64
    else:
        value = data.draw(st.floats(spec.min_value, spec.max_value, allow_subnormal=False))
    assert spec.check(value) is None
    assert getattr(NodeConfig.from_values({spec.name: value}), spec.name) == value


@pytest.mark.parametrize("spec", PARAMS, ids=lambda p: p.name)
@settings(max_examples=60, deadline=None)
@given(value=ANY_VALUE)
def test_fuzz_any_value_gets_a_verdict_never_an_exception(spec, value):
    """The validator answers every value; what it accepts forms a valid configuration."""
    reason = spec.check(value)
    assert reason is None or (isinstance(reason, str) and reason)
    if reason is None:
        config = NodeConfig.from_values({spec.name: value})
        assert getattr(config, spec.name) == (tuple(value) if isinstance(value, list) else value)
    else:
        with pytest.raises(ValueError):
            NodeConfig.from_values({spec.name: value})


def test_the_readme_cpu_temporal_settings_are_valid_parameters():
    """The YAML block the README suggests for temporal mode on a CPU loads over the shipped
    file and validates."""
    readme = (PROJECT / "README.md").read_text()
    block = readme.split("**Temporal mode on a CPU.**")[1].split("```yaml\n")[1].split("```")[0]
    suggested = yaml.safe_load(block)
    assert suggested["mode"] == "temporal" and suggested["reuse_granularity"] == "frame"
    values = yaml.safe_load((PROJECT / "config" / "seg_accel.yaml").read_text())
    merged = {**values["/**"]["ros__parameters"], **suggested}
    config = NodeConfig.from_values(merged)
    assert (config.mode, config.reuse_granularity, config.full_fraction) == \
        ("temporal", "frame", 1.0)
