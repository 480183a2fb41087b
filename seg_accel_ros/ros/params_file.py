"""The node's ROS 2 parameter files, read without ROS: what the tools' ``--params`` apply.

A file holds ``ros__parameters`` under node keys, as ``--params-file`` and launch take it.
The entries under ``/**`` apply first, then those under a key naming the node
(``seg_accel_node``, ``/seg_accel_node``), which win: rclpy's order. The tools run no
namespace, so a key in one (``/front/seg_accel_node``) applies too: a file written for a
namespaced camera evaluates as that camera's node runs. Every value is checked as the node's
configure would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.ros.parameters import SPECS

NODE_NAME = "seg_accel_node"
FLAGS = ("use_sim_time", "autostart")  # true/false parameters the node takes besides SPECS
ENGINE_FIELDS = frozenset(f.name for f in dataclasses.fields(EngineConfig))
SMALL_FRAME_PIXELS = 640 * 480  # up to this, config/temporal_cpu.yaml; above, the 720p one


def read_params_file(path: str | Path, node_name: str = NODE_NAME) -> dict[str, object]:
    """The parameter values ``path`` gives node ``node_name`` (ValueError naming the file and
    every entry the node would reject)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read parameter file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"parameter file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"parameter file {path} must map node names to 'ros__parameters'")
    values: dict[str, object] = {}
    for key in sorted(data, key=lambda k: k != "/**"):  # '/**' first, the node's own after
        if not _applies(str(key), node_name):
            continue
        entry = data[key]
        params = entry.get("ros__parameters") if isinstance(entry, dict) else None
        if not isinstance(params, dict):
            raise ValueError(f"parameter file {path}: {key!r} has no 'ros__parameters' mapping")
        values.update(params)
    reasons = [_reason(name, value) for name, value in values.items()]
    reasons = [r for r in reasons if r]
    if reasons:
        raise ValueError(f"parameter file {path}: " + "; ".join(reasons))
    return values


def engine_settings(values: Mapping[str, object]) -> dict[str, object]:
    """The :class:`EngineConfig` fields among node parameter ``values`` (integers given for
    float parameters made floats, as the node does)."""
    return {name: _as_declared(name, value) for name, value in values.items()
            if name in ENGINE_FIELDS}


def node_only(values: Mapping[str, object]) -> list[str]:
    """The parameters among ``values`` that only the node reads (QoS, outputs, start-up)."""
    return sorted(name for name in values if name not in ENGINE_FIELDS)


def params_file_text(values: Mapping[str, object], comments: Sequence[str] = ()) -> str:
    """A parameter file giving ``values`` to every node (under ``/**``), after ``comments``
    lines (ValueError naming every value the node would reject). Integers for float parameters
    are written as floats: rcl types a parameter by how the file writes it."""
    reasons = [r for r in (_reason(name, value) for name, value in values.items()) if r]
    if reasons:
        raise ValueError("; ".join(reasons))
    typed = {name: _as_declared(name, value) for name, value in values.items()}
    body = yaml.safe_dump({"/**": {"ros__parameters": typed}}, sort_keys=False,
                          default_flow_style=False)
    return "".join(f"# {line}".rstrip() + "\n" for line in comments) + body


def _as_declared(name: str, value: object) -> object:
    """``value`` typed as the node declares parameter ``name`` (a float for a float
    parameter, a list for a sequence)."""
    spec = SPECS.get(name)
    if spec is not None and isinstance(spec.default, float) and isinstance(value, int):
        return float(value)
    return list(value) if isinstance(value, tuple) else value


def _applies(key: str, node_name: str) -> bool:
    """Whether entries under node key ``key`` reach the node ``node_name``."""
    if key == "/**":
        return True
    return key.rsplit("/", 1)[-1] == node_name


def _reason(name: str, value: object) -> str | None:
    if name in FLAGS:
        return None if isinstance(value, bool) else f"{name} must be true or false"
    spec = SPECS.get(name)
    if spec is None:
        return f"unknown parameter {name!r}"
    return spec.check(value)


def shipped_params_file(name: str) -> Path | None:
    """The parameter file ``config/<name>`` this package ships: in its source tree (an
    editable install), else in its share directory (a colcon install); None if neither has it."""
    source = Path(__file__).resolve().parents[2] / "config" / name
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        share = Path(get_package_share_directory("seg_accel_ros", print_warning=False))
    except (ImportError, LookupError, OSError, ValueError):  # no ament index, or not in it
        return None
    installed = share / "config" / name
    return installed if installed.is_file() else None


def cpu_preset_file(pixels: int) -> Path | None:
    """The shipped CPU temporal parameter file for frames of ``pixels`` (None if not found)."""
    return shipped_params_file("temporal_cpu.yaml" if pixels <= SMALL_FRAME_PIXELS
                               else "temporal_cpu_720p.yaml")
