"""What every block implementation shares: argument helpers and the dense fallback.

A handler raises :class:`NotLocal` when a call has no block form (e.g. interpolation to a
size that is no integer multiple); :func:`block_op` then runs it with :func:`dense_fallback`
on the assembled maps and splits 4-D results of a level's size back into blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from seg_accel_ros.engine.blocks.gather import blocks_from_dense, dense_from_blocks
from seg_accel_ros.engine.blocks.layout import Level
from seg_accel_ros.engine.blocks.tensor import FALLBACKS, BlockTensor, set_default_handler


class NotLocal(Exception):  # noqa: N818 - control flow, not an error
    """Raised inside a handler when the call must run densely instead."""


# --------------------------------------------------------------------------------------------
# argument helpers


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    """An int or a 1- / 2-sequence as (height, width) values."""
    if isinstance(v, int):
        return v, v
    t = tuple(int(i) for i in v)
    if len(t) == 1:
        return t[0], t[0]
    if len(t) != 2:
        raise NotLocal
    return t[0], t[1]


def bind(args: tuple, kwargs: dict, names: Sequence[str], defaults: dict[str, Any]
         ) -> dict[str, Any]:
    """Positional + keyword arguments of a (C) function as one dict, with defaults."""
    bound = dict(defaults)
    bound.update(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


def tree_map(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn`` applied to the leaves of nested lists / tuples / dicts (``torch.Size`` is a leaf)."""
    if isinstance(obj, (list, tuple)) and not isinstance(obj, torch.Size):
        return type(obj)(tree_map(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: tree_map(v, fn) for k, v in obj.items()}
    return fn(obj)


def block_tensors(obj: Any, found: list[BlockTensor] | None = None) -> list[BlockTensor]:
    """The block tensors in nested lists / tuples / dicts, in order."""
    found = [] if found is None else found
    if isinstance(obj, BlockTensor):
        found.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            block_tensors(o, found)
    elif isinstance(obj, dict):
        for o in obj.values():
            block_tensors(o, found)
    return found


def compatible(a: Level, b: Level) -> bool:
    """Whether two levels hold maps of the same shape (elementwise ops may combine them)."""
    return a is b or (a.frame is b.frame and a.bf == b.bf and a.logical == b.logical)


def out_extent(e: int, k: int, s: int, p: int, d: int, ceil_mode: bool = False) -> int:
    """Output size of a window op along one axis (PyTorch's formula)."""
    span = e + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= e + p:
        out -= 1
    return out


def is_inplace(func: Callable, kwargs: dict) -> bool:
    """Whether ``func`` modifies its first argument (trailing underscore, ``inplace=True``)."""
    name = getattr(func, "__name__", "")
    return (kwargs.get("inplace") is True or "out" in kwargs or name == "__setitem__"
            or (name.endswith("_") and not name.endswith("__"))
            or name in ("__iadd__", "__isub__", "__imul__", "__itruediv__"))


def resplit(out: Any, candidates: list[Level]) -> Any:
    """Split 4-D dense results with a level's logical size back into blocks."""
    if isinstance(out, (list, tuple)):
        return type(out)(resplit(o, candidates) for o in out)
    if not isinstance(out, torch.Tensor) or isinstance(out, BlockTensor) or out.dim() != 4:
        return out
    if out.shape[0] != 1:
        return out
    hw = (int(out.shape[2]), int(out.shape[3]))
    if hw == (1, 1):
        return out
    for lvl in candidates:
        if lvl.logical == hw:
            return blocks_from_dense(out, lvl)
    found = candidates[0].frame.find_level(hw) if candidates else None
    return blocks_from_dense(out, found) if found is not None else out


def dense_fallback(func: Callable, args: tuple, kwargs: dict) -> Any:
    """Run ``func`` on the assembled dense maps; split 4-D results of a level's size back."""
    bts = block_tensors((args, kwargs))
    FALLBACKS[getattr(func, "__qualname__", None) or str(func)] += 1

    def unwrap(v: Any) -> Any:
        return dense_from_blocks(v) if isinstance(v, BlockTensor) else v

    out = func(*tree_map(args, unwrap), **tree_map(kwargs, unwrap))
    levels = [b.level for b in bts]
    if is_inplace(func, kwargs) and bts:
        # The dense copy was modified: write it back into the blocks it came from.
        target = bts[0]
        back = blocks_from_dense(dense_from_blocks(target), target.level)
        for path, part in target.parts.items():
            part.copy_(back.parts[path])
        return target if out is dense_from_blocks(target) or out is None else resplit(out, levels)
    return resplit(out, levels)


set_default_handler(dense_fallback)


def block_op(handler: Callable[..., Any]) -> Callable[[Callable, tuple, dict], Any]:
    """Wrap a handler so that raising :class:`NotLocal` runs the call densely."""

    def wrapped(func: Callable, args: tuple, kwargs: dict) -> Any:
        try:
            return handler(func, args, kwargs)
        except NotLocal:
            return dense_fallback(func, args, kwargs)

    wrapped.__name__ = handler.__name__
    return wrapped




def conform(obj: Any, level: Level) -> Any:
    """Turn tensors that are not per-block-broadcastable into block tensors of ``level``."""

    def fn(v: Any) -> Any:
        if isinstance(v, BlockTensor):
            if not compatible(v.level, level):
                raise NotLocal
            return v
        if isinstance(v, torch.Tensor) and v.dim() >= 3:
            hw = tuple(v.shape[-2:])
            if hw == (1, 1):
                return v
            if v.dim() == 4 and hw == level.logical and v.shape[0] == 1:
                return blocks_from_dense(v, level)
            raise NotLocal
        return v

    return tree_map(obj, fn)


