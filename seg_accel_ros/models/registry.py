"""Model registry: a name maps to architecture, weights, class list, palette and preprocessing.

Architectures register themselves with :func:`register_model`; :func:`create_model` builds one,
loads its weights safely (``torch.load(weights_only=True)``) and returns a :class:`LoadedModel`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from seg_accel_ros.models.classes import CAMVID_CLASSES, CAMVID_PALETTE
from seg_accel_ros.models.preprocessing import Preprocessing


class ModelLoadError(RuntimeError):
    """Raised when a model cannot be built or its weights cannot be loaded."""


StateDictExtractor = Callable[[object], Mapping[str, torch.Tensor]]


def plain_state_dict(obj: object) -> Mapping[str, torch.Tensor]:
    """Accept a bare state dict, or one wrapped under 'model' / 'state_dict'."""
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return obj
    raise ModelLoadError("file does not contain a state dict of tensors")


UNTRAINED = "architecture default initialisation"  # LoadedModel.weights without a file


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build, load and use one registered network.

    A network whose output is its logits resized bilinearly (``align_corners=False``) to the
    input size may expose them before that resize as ``coarse_logits(x)``: the dense engine
    then finds the labels without the full-size logits.
    """

    name: str
    build: Callable[[], nn.Module]
    preprocessing: Preprocessing
    class_names: tuple[str, ...] = CAMVID_CLASSES
    palette: tuple[tuple[int, int, int], ...] = CAMVID_PALETTE
    default_weights: Path | None = None  # None: the architecture's own init (e.g. ImageNet)
    output_stride: int = 32
    extract_state_dict: StateDictExtractor = plain_state_dict
    description: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _import_builtin_models()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered under ``name``."""
    _import_builtin_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelLoadError(
            f"unknown model {name!r}; registered models: {', '.join(sorted(_REGISTRY))}"
        ) from None


@dataclass
class LoadedModel:
    """A network in eval mode with the metadata the engine and the tools need."""

    spec: ModelSpec
    module: nn.Module
    weights: str  # where the weights came from, for logs and reports
    device: torch.device

    @property
    def trained(self) -> bool:
        """Whether weights were loaded (else the architecture's initialisation: the labels
        of an untrained network mean nothing)."""
        return self.weights != UNTRAINED


def builds_untrained(name: str, weights: str | Path | None) -> bool:
    """Whether ``create_model(name, weights)`` gives the architecture's own initialisation: no
    weights file given and none shipped (what the tools warn about before loading)."""
    return not weights and get_spec(name).default_weights is None


def load_state_dict_file(path: str | Path, extract: StateDictExtractor = plain_state_dict
                         ) -> Mapping[str, torch.Tensor]:
    """Read a weights file without executing code (weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or holds arbitrary pickled objects
        raise ModelLoadError(f"cannot read weights file {path}: {_load_failure(exc)}") from exc
    return extract(obj)


def _load_failure(exc: Exception) -> str:
    """One line saying why torch.load failed (its own messages span paragraphs)."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())
    if "Weights only load failed" in text:
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            return (f"it holds a pickled Python object ({found.group(1)}) that loading would "
                    f"have to import or run; weights are read without executing code: save the "
                    f"model's state_dict()")
        detail = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
        return (f"not a PyTorch weights file or corrupt "
                f"({detail.group(1).strip() if detail else 'unreadable pickle'})")
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    if "PytorchStreamReader" in text:
        return f"truncated or corrupt file ({text.split('. ')[0]})"
    text = text or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def describe_mismatch(expected: Mapping[str, torch.Tensor],
                      found: Mapping[str, torch.Tensor], examples: int = 3) -> str:
    """Why ``found`` cannot be loaded into a module whose state dict is ``expected`` ("" if it
    can): counts of missing keys, unexpected keys and wrong shapes, with the first few."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} {tuple(found[k].shape)} instead of {tuple(v.shape)}"
              for k, v in expected.items() if k in found and found[k].shape != v.shape]
    parts = [f"{len(items)} {what} (e.g. {', '.join(items[:examples])})"
             for what, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                 ("tensors of the wrong shape", shapes)) if items]
    return "; ".join(parts)


def create_model(name: str, weights: str | Path | None = None,
                 device: str | torch.device = "cpu") -> LoadedModel:
    """Build registered model ``name`` and load ``weights`` (default: the spec's own)."""
    spec = get_spec(name)
    try:
        module = spec.build()
    except Exception as exc:
        raise ModelLoadError(f"cannot build model {name!r}: {exc}") from exc
    source = UNTRAINED
    path = Path(weights) if weights else spec.default_weights
    if path is not None:
        state = load_state_dict_file(path, spec.extract_state_dict)
        try:
            module.load_state_dict({k: v.float() if v.is_floating_point() else v
                                    for k, v in state.items()}, strict=True)
        except RuntimeError as exc:
            why = describe_mismatch(module.state_dict(), state) or str(exc)[:500]
            raise ModelLoadError(f"weights {path} do not fit architecture {name!r}: {why} "
                                 f"(a checkpoint of another model or variant?)") from exc
        source = str(path)
    module.eval()
    dev = torch.device(device)
    module.to(dev)
    return LoadedModel(spec=spec, module=module, weights=source, device=dev)


_BUILTINS_IMPORTED = False


def _import_builtin_models() -> None:
    """Import the modules that register the built-in architectures (once)."""
    global _BUILTINS_IMPORTED
    if _BUILTINS_IMPORTED:
        return
    _BUILTINS_IMPORTED = True
    import importlib

    for module in ("swiftnet", "cgnet", "espnet"):
        try:
            importlib.import_module(f"seg_accel_ros.models.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"seg_accel_ros.models.{module}":
                raise
