"""Argmax labels of bilinearly upsampled logits, computed from the logits before upsampling.

Each output of an ``f``-times bilinear upsampling (``align_corners=False``) is a convex
combination of the 2 x 2 input pixels around it, and rounding is monotone: where those four
share their argmax, the output has it too. Only the outputs between pixels of different
classes are interpolated. The ``f * f`` times larger logits never exist: at 720p they are
40 MB that the upsampling writes and the reduction reads back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seg_accel_ros.engine.result import PixelReduction, pixel_labels


def upsampled_labels(padded: torch.Tensor, f: int) -> torch.Tensor:
    """Argmax labels of ``n x C x (h + 2) x (w + 2)`` logits (a 1-pixel halo around each map)
    bilinearly upsampled ``f`` times, without the halo: ``n x hf x wf``, uint8 for up to 256
    classes (int64 beyond).

    The outputs between the centres of four neighbouring pixels (a window) read those four
    alone: the ``(h + 1) x (w + 1)`` windows of the padded map tile the output, ``f x f``
    outputs each, shifted by ``f - f // 2`` outputs.
    """
    n, c, hp, wp = padded.shape
    planes = padded.contiguous()  # class planes: every pass below runs along pixels
    low = pixel_labels(planes).to(torch.uint8 if c <= 256 else torch.int64)
    top, bottom = low[:, :-1], low[:, 1:]
    uniform = ((top[:, :, :-1] == top[:, :, 1:]) & (bottom[:, :, :-1] == bottom[:, :, 1:])
               & (top[:, :, :-1] == bottom[:, :, :-1]))
    out = top[:, :, None, :-1, None].expand(n, hp - 1, f, wp - 1, f).contiguous()
    maps, ys, xs = (~uniform).nonzero(as_tuple=True)
    if maps.numel():
        first = (maps * c * hp + ys) * wp + xs  # each window's top-left pixel in class 0
        corners = (first[:, None] + torch.tensor([0, 1, wp, wp + 1], device=first.device)
                   ).view(-1)
        flat = planes.view(-1)
        patches = planes.new_empty((c, corners.numel()))  # C x (windows * 4)
        for k in range(c):
            torch.index_select(flat, 0, corners + k * hp * wp, out=patches[k])
        values = patches.view(-1, 4) @ window_weights(f).t().to(patches)  # C x windows x f*f
        labels = pixel_labels(values.view(1, c, -1, 1)).view(-1, f, f)
        out[maps, ys, :, xs, :] = labels.to(out.dtype)
    s = f - f // 2
    h, w = (hp - 2) * f, (wp - 2) * f
    return out.view(n, (hp - 1) * f, (wp - 1) * f)[:, s:s + h, s:s + w].contiguous()


def window_weights(f: int) -> torch.Tensor:
    """``f * f x 4``: weights of a window's pixels (top-left, top-right, bottom-left,
    bottom-right) in its ``f x f`` outputs of an ``f``-times bilinear upsampling."""
    t = (torch.arange(f, dtype=torch.float64) + f // 2 + 0.5) / f - 0.5  # towards the 2nd
    axis = torch.stack([1 - t, t], 1)  # f x 2
    return (axis[:, None, :, None] * axis[None, :, None, :]).reshape(f * f, 4)


def resized_labels(coarse: torch.Tensor, size: tuple[int, int]) -> torch.Tensor | None:
    """Labels of ``F.interpolate(coarse, size, mode="bilinear", align_corners=False)``,
    ``n x H x W``; None when ``size`` is not one integer multiple of the map's in both axes
    (then the caller upsamples the logits)."""
    h, w = coarse.shape[2:]
    f = size[0] // h if h and w else 0
    if f < 1 or size != (h * f, w * f):
        return None
    # Replicated edges give what the interpolation's clamping at the border gives.
    return upsampled_labels(F.pad(coarse, (1, 1, 1, 1), mode="replicate"), f)


def network_pixel_maps(module: nn.Module, x: torch.Tensor, reduce: PixelReduction
                       ) -> tuple[torch.Tensor, ...]:
    """``reduce(module(x))``, ``n x H x W`` maps. Labels alone, on the CPU, come from the
    logits before the network's final resize where it exposes them (``coarse_logits``, see
    :class:`~seg_accel_ros.models.registry.ModelSpec`): 3.5x cheaper at 720p (35 -> 10 ms)."""
    coarse = getattr(module, "coarse_logits", None)
    if coarse is None or reduce.confidence or x.device.type != "cpu":
        return reduce(one_map(module(x), "network_pixel_maps").float())
    logits = reduce.classes_of(coarse(x)).float()
    size = (int(x.shape[2]), int(x.shape[3]))
    labels = resized_labels(logits, size)
    if labels is None:
        labels = pixel_labels(F.interpolate(logits, size=size, mode="bilinear",
                                            align_corners=False))
    return (labels,)


def one_map(out: object, caller: str) -> torch.Tensor:
    """``out`` if it is one ``N x C x H x W`` map, else a TypeError naming ``caller``."""
    if not (isinstance(out, torch.Tensor) and out.dim() == 4):
        raise TypeError(f"{caller} needs a module returning one 4-D map, got {type(out)}")
    return out
