"""The block grid over an input frame and per-block path maps.

A frame of any size is cut into ``block_size`` x ``block_size`` blocks; the last row / column of
blocks may stick out of the image (the frame is zero-padded up to a multiple of the block size
and results are cropped back). A path map holds one :class:`BlockPath` per block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seg_accel_ros.engine.result import BlockPath

COMPUTED_PATHS = (BlockPath.LOW, BlockPath.FULL)
ALL_PATHS = (BlockPath.REUSE, *COMPUTED_PATHS)  # REUSE needs the temporal feature cache


@dataclass(frozen=True)
class BlockGrid:
    """Blocks of ``block_size`` input pixels over a ``height`` x ``width`` frame."""

    height: int
    width: int
    block_size: int = 128

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"frame size must be positive, got {self.height}x{self.width}")
        if self.block_size < 2 or self.block_size % 2:
            raise ValueError(f"block_size must be even and >= 2, got {self.block_size}")

    @property
    def rows(self) -> int:
        return -(-self.height // self.block_size)

    @property
    def cols(self) -> int:
        return -(-self.width // self.block_size)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols): the shape a path map must have."""
        return self.rows, self.cols

    @property
    def padded_size(self) -> tuple[int, int]:
        """(height, width) of the frame padded up to whole blocks."""
        return self.rows * self.block_size, self.cols * self.block_size

    def check_paths(self, paths: torch.Tensor | np.ndarray, allow_reuse: bool = False
                    ) -> torch.Tensor:
        """Validate a path map for this grid; return it as a CPU int64 tensor. REUSE blocks
        are only allowed with a temporal cache (``allow_reuse``)."""
        t = torch.as_tensor(np.asarray(paths) if not isinstance(paths, torch.Tensor) else paths)
        if tuple(t.shape) != self.shape:
            raise ValueError(f"path map must have shape {self.shape} for a "
                             f"{self.height}x{self.width} frame, got {tuple(t.shape)}")
        t = t.detach().to("cpu", torch.int64)
        allowed = ALL_PATHS if allow_reuse else COMPUTED_PATHS
        bad = set(t.unique().tolist()) - {int(p) for p in allowed}
        if bad:
            raise ValueError(f"unsupported block paths {sorted(bad)}; here the block engine "
                             f"runs {[p.name for p in allowed]}"
                             + ("" if allow_reuse else " (REUSE needs the temporal engine)"))
        return t

    def pixel_map(self, paths: torch.Tensor | np.ndarray) -> np.ndarray:
        """HxW uint8 map of each pixel's block path (what ``~/path_map`` publishes)."""
        p = np.asarray(paths, dtype=np.uint8).reshape(self.shape)
        b = self.block_size
        return np.repeat(np.repeat(p, b, axis=0), b, axis=1)[: self.height, : self.width].copy()

    def uniform(self, path: BlockPath) -> torch.Tensor:
        """A path map with every block on ``path``."""
        return torch.full(self.shape, int(path), dtype=torch.int64)

    def random(self, full_fraction: float, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """``round(full_fraction * blocks)`` FULL blocks at random places, LOW elsewhere."""
        if not 0.0 <= full_fraction <= 1.0:
            raise ValueError("full_fraction must be in [0, 1]")
        n = self.rows * self.cols
        order = torch.randperm(n, generator=generator)
        flat = torch.full((n,), int(BlockPath.LOW), dtype=torch.int64)
        flat[order[: round(full_fraction * n)]] = int(BlockPath.FULL)
        return flat.view(self.shape)
