"""``BlockEngine``: block-sparse segmentation of one frame under a given path map."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from seg_accel_ros.engine.blocks.convert import BlockwiseModel, TemporalInput
from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.blocks.reuse import FeatureCache
from seg_accel_ros.engine.result import BlockPath, FrameResult, PixelReduction
from seg_accel_ros.models.preprocessing import Preprocessing
from seg_accel_ros.models.registry import LoadedModel


class BlockEngine:
    """Runs a network block-wise: FULL blocks at input resolution, LOW blocks at half.

    ``model`` is a :class:`LoadedModel` (preprocessing, class count and declared global modules
    come from its spec) or a bare ``nn.Module`` (then ``run`` only). ``global_modules`` adds
    submodule names that must run densely on the assembled map. ``dense_single_path``: see
    :class:`~.convert.BlockwiseModel`. ``confidence``: ``process`` also returns each pixel's
    max softmax probability (for policies that read it).
    """

    def __init__(self, model: LoadedModel | nn.Module, block_size: int = 128,
                 global_modules: tuple[str, ...] | None = None,
                 dense_single_path: bool = True, confidence: bool = False) -> None:
        self.confidence = confidence
        if isinstance(model, LoadedModel):
            module = model.module
            self.preprocessing: Preprocessing | None = model.spec.preprocessing
            self.num_classes: int | None = model.spec.num_classes
            declared = tuple(model.spec.extra.get("global_modules", ()))
            self.device = model.device
        else:
            module = model
            self.preprocessing = None
            self.num_classes = None
            declared = ()
            param = next(module.parameters(), None)
            self.device = param.device if param is not None else torch.device("cpu")
        names = declared + tuple(global_modules or ())
        self.model = BlockwiseModel(module, block_size, names, dense_single_path)
        self.block_size = block_size

    @property
    def last_cache(self) -> FeatureCache | None:
        """The temporal cache the last ``process(..., temporal=...)`` frame recorded."""
        return self.model.last_cache

    def grid(self, height: int, width: int) -> BlockGrid:
        """The block grid for a ``height`` x ``width`` frame (its ``shape`` is the path map's)."""
        return BlockGrid(height, width, self.block_size)

    @torch.inference_mode()
    def run(self, x: torch.Tensor, paths: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``1 x 3 x H x W`` normalised input -> logits as the dense network would shape them."""
        return self.model(x, torch.as_tensor(paths))

    def process(self, image_rgb: np.ndarray, paths: torch.Tensor | np.ndarray,
                temporal: TemporalInput | None = None) -> FrameResult:
        """Segment one HxWx3 uint8 RGB frame with the given ``rows x cols`` path map.

        ``temporal`` = (previous cache, motion): REUSE blocks allowed, and the frame's own
        cache is left in :attr:`last_cache` (see :meth:`BlockwiseModel.per_pixel`)."""
        if self.preprocessing is None or self.num_classes is None:
            raise RuntimeError("process() needs a LoadedModel (preprocessing, classes)")
        h, w = image_rgb.shape[:2]
        grid = self.grid(h, w)
        paths_t = grid.check_paths(torch.as_tensor(np.asarray(paths)), temporal is not None)
        t0 = time.perf_counter()
        if bool((paths_t == BlockPath.REUSE).all()):  # nothing runs: the input's shape is enough
            x = torch.empty((), device=self.device).expand(1, 3, h, w)
        else:
            x = self.preprocessing.to_tensor(image_rgb, self.device)
        reduce = PixelReduction(self.num_classes, self.confidence)
        with torch.inference_mode():
            labels, *conf = self.model.per_pixel(x, paths_t, reduce, temporal)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        n = paths_t.numel()
        return FrameResult(
            labels=labels.to(torch.uint8).cpu().numpy(),
            path_map=grid.pixel_map(paths_t.numpy()),
            confidence=conf[0].cpu().numpy() if conf else None,
            timings_ms={"network": (t1 - t0) * 1e3},
            path_mix={
                "full": int((paths_t == BlockPath.FULL).sum()) / n,
                "low": int((paths_t == BlockPath.LOW).sum()) / n,
                "reuse": int((paths_t == BlockPath.REUSE).sum()) / n,
            },
        )
