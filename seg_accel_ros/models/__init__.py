"""Segmentation networks, their registry and weights."""

from seg_accel_ros.models.registry import (
    LoadedModel,
    ModelLoadError,
    ModelSpec,
    create_model,
    get_spec,
    list_models,
    register_model,
)

__all__ = [
    "LoadedModel", "ModelLoadError", "ModelSpec", "create_model", "get_spec", "list_models",
    "register_model",
]
