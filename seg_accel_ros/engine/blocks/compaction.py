"""Bounded cache memory: older frames keep only the feature rows later frames still point at.

A frame's recorded tables are whole feature maps (about 390 MB for ``swiftnet_lite0`` at
1280x720). REUSE pixels keep an old frame alive even when they point at a few of its rows, so
between keyframes the cache held up to nine frames (1.4 GB). At the end of each frame,
:func:`compact` replaces every table of an older frame whose rows are used at most
:data:`COMPACT_SHARE` of by the current indexes with just the used rows, and renumbers the
indexes. Each later compaction of the same table copies at most that share of what is left,
so the copies shrink geometrically and memory stays near one frame plus the rows in use.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from seg_accel_ros.engine.blocks.reuse import OpMaps

COMPACT_SHARE = 0.5  # compact a table once at most this share of its rows is still used

LevelKey = tuple[int, tuple[int, int]]


def compact(ops: tuple[OpMaps, ...], indexes: dict[LevelKey, np.ndarray],
            full_index: tuple[LevelKey, np.ndarray] | None, current: int, row_bits: int,
            share: float | None = None) -> tuple[OpMaps, ...]:
    """Compact the tables of ``ops`` (:class:`~.reuse.OpMaps`) of frames before ``current``.

    ``indexes`` (and ``full_index``, where negative codes mean none) are renumbered in place;
    returns the ops with their compacted tables (new dicts; the old ones are left as they
    were). Codes are ``frame id << 2 | path`` above ``row_bits`` bits of row. ``share``
    defaults to :data:`COMPACT_SHARE` (0 turns compaction off).
    """
    share = COMPACT_SHARE if share is None else share
    arrays: dict[LevelKey, list[np.ndarray]] = defaultdict(list)
    for level_key, index in indexes.items():
        arrays[level_key].append(_flat_view(index))
    if full_index is not None:
        arrays[full_index[0]].append(_flat_view(full_index[1]))
    by_level: dict[LevelKey, list[OpMaps]] = defaultdict(list)
    for op in ops:
        by_level[op.key[:2]].append(op)
    replaced: dict[tuple[int, int], torch.Tensor] = {}  # id(table), id(rows) -> compacted
    new_tables: dict[int, dict[int, dict[int, torch.Tensor]]] = {}  # id(op) -> tables
    new_reduced: dict[int, dict[int, dict[int, tuple[torch.Tensor, ...]]]] = {}
    row_mask = (1 << row_bits) - 1
    for level_key, level_ops in by_level.items():
        flats = arrays.get(level_key)
        if not flats:
            continue
        groups = [flat >> row_bits for flat in flats]
        for group, count in _reference_counts(groups, current).items():
            frame_id, path = group >> 2, group & 3
            total = _table_rows(level_ops, frame_id, path)
            # ``count`` bounds the rows used from above (pixels can share a row): a cheap test
            # that skips every table still in wide use without looking at its rows
            if total is None or count > share * total:
                continue
            hits = [grp == group for grp in groups]
            used = np.zeros(total, bool)
            for flat, hit in zip(flats, hits, strict=True):
                used[flat[hit] & row_mask] = True
            rows = np.flatnonzero(used)
            lut = np.full(total, -1, np.int64)
            lut[rows] = np.arange(rows.size)
            for flat, hit in zip(flats, hits, strict=True):
                flat[hit] = (group << row_bits) | lut[flat[hit] & row_mask]
            for op in level_ops:
                _compact_op(op, frame_id, path, rows, replaced, new_tables, new_reduced)
    return tuple(_with(op, new_tables, new_reduced) for op in ops)


def _flat_view(index: np.ndarray) -> np.ndarray:
    """``index`` as one flat view (renumbering writes through it)."""
    if not index.flags.c_contiguous:
        raise ValueError("source indexes must be C-contiguous to be renumbered in place")
    return index.reshape(-1)


def _reference_counts(groups: list[np.ndarray], current: int) -> dict[int, int]:
    """How many codes point into each (frame, path) group of the frames before ``current``
    (negative codes: none)."""
    counts: dict[int, int] = defaultdict(int)
    for grp in groups:
        if not grp.size:
            continue
        low = int(grp.min())
        if low < 0:
            grp = grp[grp >= 0]
            if not grp.size:
                continue
            low = int(grp.min())
        found = np.bincount(grp - low)
        for g in np.flatnonzero(found[: max(0, (current << 2) - low)]):
            counts[int(g) + low] += int(found[g])
    return counts


def _table_rows(level_ops: list[OpMaps], frame_id: int, path: int) -> int | None:
    for op in level_ops:
        table = op.tables.get(frame_id, {}).get(path)
        if table is not None:
            return int(table.shape[0])
    return None


def _compact_op(op: OpMaps, frame_id: int, path: int, rows: np.ndarray,
                replaced: dict[tuple[int, int], torch.Tensor],
                new_tables: dict, new_reduced: dict) -> None:
    tables = new_tables.setdefault(id(op), {})
    source = tables.get(frame_id, op.tables.get(frame_id))
    if source is None or path not in source:
        return
    rows_t = torch.from_numpy(rows).to(source[path].device)

    def take(t: torch.Tensor) -> torch.Tensor:
        key = (id(t), id(rows))
        if key not in replaced:  # tables shared between ops are compacted once
            replaced[key] = t.index_select(0, rows_t)
        return replaced[key]

    tables[frame_id] = {**source, path: take(source[path])}
    maps = op.reduced.get(frame_id, {}).get(path)
    if maps is not None:
        reduced = new_reduced.setdefault(id(op), {})
        reduced[frame_id] = {**reduced.get(frame_id, op.reduced[frame_id]),
                             path: tuple(take(m) for m in maps)}


def _with(op: OpMaps, new_tables: dict, new_reduced: dict) -> OpMaps:
    tables, reduced = new_tables.get(id(op)), new_reduced.get(id(op))
    if not tables and not reduced:
        return op
    return replace(op, tables={**op.tables, **(tables or {})},
                   reduced={**op.reduced, **(reduced or {})})
