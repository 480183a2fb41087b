"""Segmentation metrics from one confusion matrix accumulated over a whole split.

Scores are computed from the pixel counts summed over every frame of the split (the standard
CamVid / Cityscapes protocol), never as a mean of per-image scores.

Conventions:

- pixels whose ground truth is ``ignore_index`` (CamVid: 11, Unlabelled) are left out entirely;
- a prediction outside ``0..num_classes-1`` (a network's own "void" output, if it has one) is
  kept as a miss for its ground-truth class: it lowers that class's IoU and accuracy and is
  counted as a false positive for no class;
- a class with no pixel in the ground truth and none in the prediction over the whole split has
  an undefined IoU: it is reported as NaN and left out of the mean IoU; likewise a class absent
  from the ground truth has a NaN accuracy and is left out of the mean class accuracy. (A class
  that is only predicted, never in the ground truth, has IoU 0 and counts in the mean IoU.)
"""

from __future__ import annotations

import numpy as np
import torch


class ConfusionMatrix:
    """``counts[t, p]``: pixels of ground-truth class ``t`` predicted as class ``p``.

    The last column (index ``num_classes``) counts predictions outside the class range.
    """

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError("num_classes must be >= 1")
        self.num_classes = num_classes
        self.counts = np.zeros((num_classes, num_classes + 1), dtype=np.int64)

    def reset(self) -> None:
        """Forget every pixel counted so far."""
        self.counts[:] = 0

    def update(self, pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor,
               ignore_index: int | None = None) -> None:
        """Add one frame (or a batch): integer label arrays of equal shape.

        Target pixels equal to ``ignore_index`` are skipped; any other target value outside
        ``0..num_classes-1`` is an error (a wrong label mapping would silently bias the scores).
        """
        pred, target = _as_int_array(pred), _as_int_array(target)
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
        if ignore_index is not None:
            keep = target != ignore_index
            pred, target = pred[keep], target[keep]
        else:
            pred, target = pred.ravel(), target.ravel()
        if target.size == 0:
            return
        if target.min() < 0 or target.max() >= self.num_classes:
            raise ValueError(
                f"target labels must be in 0..{self.num_classes - 1} (or the ignore index), "
                f"found {int(target.min())}..{int(target.max())}")
        n = self.num_classes
        pred = np.where((pred < 0) | (pred >= n), n, pred)
        self.counts += np.bincount(target * (n + 1) + pred,
                                   minlength=n * (n + 1)).reshape(n, n + 1)

    def merge(self, other: ConfusionMatrix) -> None:
        """Add the counts of ``other`` (e.g. from another worker)."""
        if other.num_classes != self.num_classes:
            raise ValueError("cannot merge confusion matrices of different class counts")
        self.counts += other.counts

    @property
    def total(self) -> int:
        """Number of counted (non-ignored) pixels."""
        return int(self.counts.sum())

    def unscored_share(self) -> float:
        """Share of counted pixels predicted outside ``0..num_classes-1`` (NaN if none counted)."""
        total = self.total
        return float(self.counts[:, self.num_classes].sum() / total) if total else float("nan")

    def _true_positives(self) -> np.ndarray:
        return np.diag(self.counts[:, : self.num_classes]).astype(np.float64)

    def iou(self) -> np.ndarray:
        """Per-class intersection over union; NaN for classes absent from both sides."""
        tp = self._true_positives()
        gt = self.counts.sum(axis=1)
        predicted = self.counts[:, : self.num_classes].sum(axis=0)
        union = (gt + predicted - tp).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def mean_iou(self) -> float:
        """Mean of :meth:`iou` over the classes where it is defined (NaN if none is)."""
        return _nanmean(self.iou())

    def class_accuracy(self) -> np.ndarray:
        """Per-class recall (correct pixels / ground-truth pixels); NaN where no ground truth."""
        tp = self._true_positives()
        gt = self.counts.sum(axis=1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(gt > 0, tp / gt, np.nan)

    def mean_class_accuracy(self) -> float:
        """Mean of :meth:`class_accuracy` over the classes present in the ground truth."""
        return _nanmean(self.class_accuracy())

    def pixel_accuracy(self) -> float:
        """Correct pixels / counted pixels (NaN when nothing was counted)."""
        total = self.total
        return float(self._true_positives().sum() / total) if total else float("nan")


def _as_int_array(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {x.dtype}")
    return x.astype(np.int64, copy=False)


def _nanmean(values: np.ndarray) -> float:
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")
