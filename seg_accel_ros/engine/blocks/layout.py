"""Per-frame block layout: which blocks take which path, and the resolution levels met.

A :class:`Frame` is built once per frame from the grid and the path map: which cells take which
path and where each block sits in its path's batch. REUSE blocks are not computed: their
features come from the temporal cache (``reuse.py``), at full resolution, whenever an op reads
across block borders. A :class:`Level` is one feature resolution:
FULL blocks are ``bf`` pixels wide there, LOW blocks ``bf / 2``. Each level remembers the valid
extent of the feature map for each path (what the dense network would have; rows / columns past
it only exist because the frame was padded to whole blocks) and caches the index plans its
layers share (``blockpad.py``).
"""

from __future__ import annotations

import torch

from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.result import BlockPath

FULL = int(BlockPath.FULL)
LOW = int(BlockPath.LOW)
REUSE = int(BlockPath.REUSE)
PATH_ORDER = (FULL, LOW)  # the computed paths


def resolution(path: int) -> int:
    """The path whose resolution ``path``'s blocks have (REUSE blocks are full-resolution)."""
    return LOW if path == LOW else FULL


class Scratch:
    """One reusable buffer for padded batches, which live only until their op has run.

    Reusing it avoids allocating (and, on CPU, page-faulting) a fresh halo-padded copy of every
    feature map a padded op reads.
    """

    def __init__(self) -> None:
        self._buf: torch.Tensor | None = None

    def flat(self, numel: int, like: torch.Tensor) -> torch.Tensor:
        """A flat buffer of at least ``numel`` elements of ``like``'s dtype and device."""
        buf = self._buf
        if buf is None or buf.numel() < numel or buf.dtype != like.dtype or (
                buf.device != like.device):
            buf = self._buf = torch.empty(numel, dtype=like.dtype, device=like.device)
        return buf


class Frame:
    """One frame's grid and path assignment, with precomputed index maps.

    ``scratch`` (shared across frames by the caller) holds the padded batches.
    """

    def __init__(self, grid: BlockGrid, paths: torch.Tensor, device: torch.device,
                 scratch: Scratch | None = None) -> None:
        self.grid = grid
        self.scratch = scratch if scratch is not None else Scratch()
        self.paths = grid.check_paths(paths, allow_reuse=True)
        self.device = torch.device(device)
        flat = self.paths.flatten()
        self.present: tuple[int, ...] = tuple(p for p in PATH_ORDER if bool((flat == p).any()))
        self.reused = bool((flat == REUSE).any())
        laid_out = self.present + ((REUSE,) if self.reused else ())
        self.cells_cpu = {p: (flat == p).nonzero().flatten() for p in laid_out}
        self.cells = {p: c.to(self.device) for p, c in self.cells_cpu.items()}
        self.counts = {p: int(c.numel()) for p, c in self.cells_cpu.items()}
        slot = torch.full((flat.numel(),), -1, dtype=torch.int64)
        for cells in self.cells_cpu.values():
            slot[cells] = torch.arange(cells.numel())
        self.slot_np = slot.numpy()  # cell -> position in its path's batch
        self.path_np = flat.numpy()  # cell -> path
        self.cells_np = {p: c.numpy() for p, c in self.cells_cpu.items()}
        self._levels: dict[tuple, Level] = {}
        self._low_levels: dict[tuple, Level] = {}  # LOW-only frames: (bf, LOW extent) -> level
        self.reuse: object | None = None  # the frame's ReuseContext (reuse.py) in temporal mode

    def release(self) -> None:
        """Forget the levels (and their index plans) once the frame is done with.

        Levels point back to their frame, so the two form a reference cycle. Left alone, a
        replaced frame waits for the cyclic garbage collector, and in a streaming node such
        frames piled up between collections (temporal mode at 720p: resident memory grew by
        about 300 MB a minute).
        """
        self._levels.clear()
        self._low_levels.clear()

    @property
    def has_full(self) -> bool:
        """Whether maps exist at full resolution (FULL or REUSE blocks)."""
        return FULL in self.present or self.reused

    def supports(self, bf: int) -> bool:
        """Whether FULL blocks ``bf`` pixels wide (and LOW ones half that) form a level."""
        return bf >= 1 and (LOW not in self.present or bf % 2 == 0)

    def level(self, bf: int, ext_full: tuple[int, int], ext_low: tuple[int, int]) -> Level:
        """The level with FULL block size ``bf`` and these valid extents (one object per key).

        Without full-resolution blocks the FULL extent is bookkeeping only, and the network's
        sizes are LOW ones (``2 x`` a LOW size overshoots an odd image): the first level met
        with these LOW blocks, the input's for an output upsampled to the input size, keeps
        the true one. Cached maps and output crops then match frames with FULL blocks.
        """
        key = (bf, tuple(ext_full), tuple(ext_low))
        lvl = self._levels.get(key)
        if lvl is None and not self.has_full:
            lvl = self._low_levels.get((bf, key[2]))
        if lvl is None:
            lvl = self._levels[key] = Level(self, bf, key[1], key[2])
            if not self.has_full:
                self._low_levels[(bf, key[2])] = lvl
        return lvl

    def find_level(self, hw: tuple[int, int]) -> Level | None:
        """A level whose logical (dense) size is ``hw``, the most recent one if several."""
        for lvl in reversed(self._levels.values()):
            if lvl.logical == hw:
                return lvl
        return None

    def block_coords_cpu(self, path: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(grid rows, grid cols) of ``path``'s blocks, on the CPU."""
        cells = self.cells_cpu[path]
        return cells // self.grid.cols, cells % self.grid.cols

    def block_coords(self, path: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(grid rows, grid cols) of ``path``'s blocks, on the device."""
        cells = self.cells[path]
        cols = self.grid.cols
        return cells // cols, cells % cols


class Level:
    """One feature resolution of a frame (FULL blocks ``bf`` px, LOW blocks ``bf // 2`` px)."""

    def __init__(self, frame: Frame, bf: int, ext_full: tuple[int, int],
                 ext_low: tuple[int, int]) -> None:
        self.frame = frame
        self.bf = bf
        self.ext = {FULL: ext_full, LOW: ext_low, REUSE: ext_full}
        # The size the dense network would see: LOW-only frames behave like a dense run on the
        # half-resolution image.
        self.logical = ext_full if frame.has_full else ext_low
        self.cache: dict[object, object] = {}

    def block(self, path: int) -> int:
        return self.bf // 2 if path == LOW else self.bf

    def __repr__(self) -> str:
        return f"Level(bf={self.bf}, full={self.ext[FULL]}, low={self.ext[LOW]})"
