"""A learned block scorer: which blocks gain most from FULL, predicted from the image alone.

The issue's "learned policy": per network, a ridge regression of the share of a block's pixels
that FULL labels correctly and LOW does not (on CamVid train, against the ground truth), on a
few cheap per-block image features. It needs no previous prediction, so it also works on a
stream's first frame and on frames far apart. Trained by ``seg_accel_train_policy``; the
result is a small JSON file bundled per network, used only with the network weights it was
trained for (their SHA-256 is recorded).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_accel_ros.engine.policy import block_means, gradient_energy

FEATURES = (
    "gradient_quarter",  # gradient energy on the 4x downscaled frame / the frame's mean
    "gradient_half",  # the same on the 2x downscaled frame
    "detail",  # |grey - grey 2x down and up again| (what LOW loses) / the frame's mean
    "detail_level",  # the same in grey levels / 10
    "saturation",  # mean HSV saturation / 255
    "brightness",  # mean grey level / 255
    "row",  # block centre height / frame height
    "row_squared",
    "off_centre",  # |block centre x / frame width - 0.5|
)
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "models" / "weights"
log = logging.getLogger(__name__)


def _relative(values: np.ndarray) -> np.ndarray:
    mean = float(values.mean())
    return values / mean if mean > 1e-12 else np.zeros_like(values)


def block_features(image_rgb: np.ndarray, grid_shape: tuple[int, int], block_size: int
                   ) -> np.ndarray:
    """``rows * cols x len(FEATURES)`` features of an HxWx3 uint8 RGB frame's blocks."""
    rows, cols = grid_shape
    h, w = image_rgb.shape[:2]
    hw, hh = max(1, w // 2), max(1, h // 2)
    grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    half = cv2.resize(grey, (hw, hh), interpolation=cv2.INTER_AREA)
    quarter = cv2.resize(half, (max(1, hw // 2), max(1, hh // 2)),
                         interpolation=cv2.INTER_AREA)
    half_cell = max(1, block_size // 2)
    feats = [_relative(block_means(gradient_energy(quarter), grid_shape,
                                   max(1, block_size // 4))),
             _relative(block_means(gradient_energy(half), grid_shape, half_cell))]
    detail = block_means(cv2.absdiff(grey, cv2.resize(half, (w, h))), grid_shape, block_size)
    feats += [_relative(detail), detail / 10.0]
    # colour statistics need no detail: taken from the half-resolution frame
    small_rgb = cv2.resize(image_rgb, (hw, hh), interpolation=cv2.INTER_AREA)
    saturation = cv2.cvtColor(small_rgb, cv2.COLOR_RGB2HSV)[..., 1]
    feats.append(block_means(saturation, grid_shape, half_cell) / 255.0)
    feats.append(block_means(half, grid_shape, half_cell) / 255.0)
    row = (np.arange(rows, dtype=np.float32)[:, None] + 0.5) * block_size / h
    col = (np.arange(cols, dtype=np.float32)[None, :] + 0.5) * block_size / w
    row, col = np.broadcast_to(row, grid_shape), np.broadcast_to(col, grid_shape)
    feats += [row, row * row, np.abs(col - 0.5)]
    return np.stack([np.asarray(f, np.float32) for f in feats], axis=-1).reshape(
        rows * cols, len(FEATURES))


def block_gain(full: np.ndarray, low: np.ndarray, truth: np.ndarray, block_size: int,
               ignore_index: int | None = None) -> np.ndarray:
    """rows x cols share of each block's pixels that ``full`` labels right and ``low`` not
    (minus the reverse): what choosing FULL there is worth."""
    valid = truth != ignore_index if ignore_index is not None else np.ones(truth.shape, bool)
    diff = ((full == truth) & valid).astype(np.float32) - ((low == truth) & valid)
    h, w = truth.shape
    rows, cols = -(-h // block_size), -(-w // block_size)
    padded = np.zeros((rows * block_size, cols * block_size), np.float32)
    padded[:h, :w] = diff
    return padded.reshape(rows, block_size, cols, block_size).sum(axis=(1, 3)) / block_size ** 2


@dataclass(frozen=True)
class LinearBlockScorer:
    """Predicted FULL gain per block: ``features @ weights + bias``."""

    weights: tuple[float, ...]
    bias: float
    model: str = ""  # the network it was trained for
    network_sha256: str = ""  # of the network's weights file

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise ValueError(f"expected {len(FEATURES)} weights, got {len(self.weights)}")

    def predict(self, image_rgb: np.ndarray, grid_shape: tuple[int, int], block_size: int
                ) -> np.ndarray:
        """rows x cols predicted gains."""
        feats = block_features(image_rgb, grid_shape, block_size)
        return (feats @ np.asarray(self.weights, np.float32) + self.bias).reshape(grid_shape)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"model": self.model,
                                          "network_sha256": self.network_sha256,
                                          "features": list(FEATURES),
                                          "weights": list(self.weights), "bias": self.bias},
                                         indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LinearBlockScorer:
        data = json.loads(Path(path).read_text())
        if tuple(data.get("features", ())) != FEATURES:
            raise ValueError(f"{path}: trained on other features than {FEATURES}")
        return cls(tuple(float(w) for w in data["weights"]), float(data["bias"]),
                   str(data.get("model", "")), str(data.get("network_sha256", "")))


def fit_scorer(features: np.ndarray, gains: np.ndarray, ridge: float = 1.0,
               model: str = "", network_sha256: str = "") -> LinearBlockScorer:
    """Ridge regression of ``gains`` (n) on ``features`` (n x F); the bias is not penalised
    more than the weights (it only shifts every score alike)."""
    x = np.concatenate([features, np.ones((len(features), 1), features.dtype)], axis=1)
    x = x.astype(np.float64)
    coef = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ gains.astype(np.float64))
    return LinearBlockScorer(tuple(float(c) for c in coef[:-1]), float(coef[-1]), model,
                             network_sha256)


def scorer_path(model: str) -> Path:
    """The scorer bundled with the package for ``model`` (and its packaged weights)."""
    return WEIGHTS_DIR / f"policy_{model}.json"


def sidecar_scorer_path(weights_file: str | Path) -> Path:
    """Where a scorer trained for a weights file of one's own lives: beside it
    (``run/export.pt`` -> ``run/export.policy.json``)."""
    return Path(weights_file).with_suffix(".policy.json")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def trained_scorer(model: str, weights_file: str | Path | None) -> LinearBlockScorer | None:
    """The scorer trained for ``model`` with ``weights_file``: the one beside the weights
    file (:func:`sidecar_scorer_path`), else the package's; None if neither was trained for
    exactly these weights (SHA-256 checked; an unreadable file is logged and skipped)."""
    if weights_file is None or not Path(weights_file).is_file():
        return None
    sha = None
    for path in (sidecar_scorer_path(weights_file), scorer_path(model)):
        if not path.is_file():
            continue
        try:
            scorer = LinearBlockScorer.load(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("block scorer %s skipped: %s: %s", path, type(exc).__name__, exc)
            continue
        sha = sha or file_sha256(weights_file)
        if scorer.model == model and scorer.network_sha256 == sha:
            return scorer
    return None
