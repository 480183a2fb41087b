"""``BlockTensor``: a feature map held as one batch of blocks per path.

To the network it looks like an ordinary ``1 x C x H x W`` tensor (shape, dtype and device are
those of the dense map it stands for), so unmodified ``forward`` code runs on it: every torch
function that receives one is routed through ``__torch_function__`` to a handler registered in
:data:`HANDLERS` (see ``ops.py``), which runs ordinary dense kernels on the per-path batches.
Functions without a handler run densely on the assembled map (correct, slower), and are counted
in :data:`FALLBACKS` so that tests and benchmarks can see them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

from seg_accel_ros.engine.blocks.layout import REUSE, Level


class BlockExecutionError(RuntimeError):
    """A block tensor reached an operation that cannot run on it."""


Handler = Callable[[Callable, tuple, dict], Any]
HANDLERS: dict[Callable, Handler] = {}
FALLBACKS: Counter[str] = Counter()
_DEFAULT: list[Handler] = []  # set by ops.py: runs unhandled functions densely

_METADATA_ATTRS = frozenset({
    "shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "layout", "is_sparse",
    "is_quantized", "is_meta", "is_nested", "is_mkldnn", "is_cpu",
})
_METADATA_FUNCS = frozenset({torch.Tensor.size, torch.Tensor.dim, torch.Tensor.numel,
                             torch.Tensor.__len__, torch.Tensor.element_size,
                             torch.Tensor.get_device, torch.Tensor.is_floating_point})


def register(*funcs: Callable) -> Callable[[Handler], Handler]:
    """Decorator: ``handler(func, args, kwargs)`` runs ``funcs`` on block tensors."""

    def deco(handler: Handler) -> Handler:
        for f in funcs:
            HANDLERS[f] = handler
        return handler

    return deco


def set_default_handler(handler: Handler) -> None:
    _DEFAULT[:] = [handler]


class BlockTensor(torch.Tensor):
    """A level's feature map as ``parts[path]``: an ``n_path x C x b x b`` batch per path."""

    level: Level
    parts: dict[int, torch.Tensor]
    dense_cache: torch.Tensor | None
    completed: BlockTensor | None  # the same map with its REUSE blocks attached (reuse.py)
    reused: Any  # reuse.ReusedBlocks of a completed map, else None

    @staticmethod
    def __new__(cls, level: Level, parts: dict[int, torch.Tensor]) -> BlockTensor:
        any_part = next(iter(parts.values()))
        h, w = level.logical
        r = torch.Tensor._make_wrapper_subclass(
            cls, (1, any_part.shape[1], h, w), dtype=any_part.dtype, device=any_part.device)
        r.level = level
        r.parts = parts
        r.dense_cache = None
        r.completed = None
        r.reused = None
        return r

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        raise BlockExecutionError(
            f"{func} reached the dispatcher with a BlockTensor; it has no block implementation")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        kwargs = kwargs or {}
        handler = HANDLERS.get(func)
        if handler is not None:
            return handler(func, args, kwargs)
        if _is_metadata(func):
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs)
        return _DEFAULT[0](func, args, kwargs)

    def __repr__(self) -> str:  # printing must not assemble the map
        return (f"BlockTensor(shape={tuple(self.shape)}, {self.level}, "
                f"parts={ {p: tuple(t.shape) for p, t in self.parts.items()} })")


def completed(x: BlockTensor) -> BlockTensor:
    """``x`` with its frame's REUSE blocks attached from the temporal cache (``reuse.py``);
    ``x`` itself outside temporal execution. Ops that read across block borders call it."""
    ctx = x.level.frame.reuse
    return x if ctx is None else ctx.complete(x)  # type: ignore[attr-defined]


def with_reused(x: BlockTensor) -> dict[int, torch.Tensor]:
    """``x``'s parts plus its REUSE blocks materialised (ops that need the whole map)."""
    return x.parts if x.reused is None else {**x.parts, REUSE: x.reused.blocks()}


def _is_metadata(func: Callable) -> bool:
    if func in _METADATA_FUNCS:
        return True
    owner = getattr(func, "__self__", None)
    return (getattr(func, "__name__", "") == "__get__"
            and getattr(owner, "__name__", None) in _METADATA_ATTRS
            and getattr(owner, "__objclass__", None) is torch._C.TensorBase)
