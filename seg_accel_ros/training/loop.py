"""The training loop: optimiser, sampler, one step, validation, checkpoint / resume, logging."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from seg_accel_ros.evaluation.metrics import ConfusionMatrix
from seg_accel_ros.models.classes import CAMVID_IGNORE_INDEX
from seg_accel_ros.models.preprocessing import Preprocessing
from seg_accel_ros.training.checkpoint import export_weights, load_checkpoint, save_checkpoint
from seg_accel_ros.training.consistency import PairBatches, consistency_loss
from seg_accel_ros.training.schedule import lr_factor, set_lr, training_progress


@dataclass
class TrainConfig:
    """Hyper-parameters and bookkeeping options of one training run."""

    epochs: int = 100
    batch_size: int = 8
    lr: float = 4e-4  # decoder; the encoder gets lr * encoder_lr_ratio
    encoder_lr_ratio: float = 0.25
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup: float = 0.02  # fraction of training
    workers: int = 2
    seed: int = 0
    val_every: int = 5  # epochs; 0: never
    time_budget_s: float | None = None  # the schedule also advances with wall time
    max_steps: int | None = None
    log_every: int = 10
    checkpoint_every_s: float = 300.0
    amp: bool = True  # fp16 autocast on CUDA (ignored on CPU)
    low_weight: float = 0.0  # weight of the LOW-path loss (see :func:`low_path_logits`)
    consistency_weight: float = 0.0  # weight of the video pairs' temporal consistency loss
    freeze_bn: bool = False  # fine-tuning: BatchNorm keeps the starting running statistics
    validate_at_start: bool = False  # fine-tuning: the starting weights set the bar to beat
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in checkpoints and the log


class JsonlLog:
    """Appends one JSON object per line (and echoes a short line to ``stream``)."""

    def __init__(self, path: str | Path, stream: TextIO | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stream = stream

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.stream is not None:
            text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in record.items() if not isinstance(v, list))
            print(text, file=self.stream, flush=True)


class EpochSampler(Sampler[int]):
    """A permutation fixed by ``(seed, epoch)``, starting at position ``start`` (for resume)."""

    def __init__(self, size: int, seed: int, epoch: int, start: int = 0) -> None:
        self.order = np.random.default_rng((seed, epoch, 7)).permutation(size).tolist()[start:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def limit_opencv_threads() -> None:
    """One OpenCV thread, set in the parent before any cv2 call and before forking workers.

    Calling ``cv2.setNumThreads`` inside a forked worker deadlocks when the parent has already
    started OpenCV's thread pool (the inherited pool's condition variable never wakes).
    """
    import cv2

    cv2.setNumThreads(1)


def make_loader(dataset: Dataset, batch_size: int, workers: int, sampler: Sampler[int],
                pin_memory: bool = False) -> DataLoader:
    """Batches of augmented samples in ``sampler`` order; incomplete last batch dropped."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      drop_last=True, pin_memory=pin_memory, persistent_workers=False)


def build_optimizer(model: nn.Module, lr: float, encoder_lr_ratio: float = 0.25,
                    weight_decay: float = 1e-4) -> torch.optim.Optimizer:
    """AdamW; a pretrained ``model.encoder`` gets a lower rate and weight decay (SwiftNet)."""
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    enc_ids = {id(p) for p in encoder.parameters()}
    rest = [p for p in model.parameters() if id(p) not in enc_ids]
    return torch.optim.AdamW([
        {"params": list(encoder.parameters()), "lr": lr * encoder_lr_ratio,
         "weight_decay": weight_decay * encoder_lr_ratio},
        {"params": rest, "lr": lr, "weight_decay": weight_decay},
    ])


def low_path_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the block engine's LOW path shows for ``x``: the network on the 2x2-averaged input,
    its output upsampled bilinearly to ``x``'s size."""
    low = model(F.avg_pool2d(x, 2))
    return F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)


class StepRunner:
    """One optimisation step on one batch: normalise on device, forward, loss, backward, step.

    ``low_weight`` > 0 adds that share of the same loss on the LOW path's output
    (:func:`low_path_logits`): the network learns to segment at full resolution from a
    half-resolution input too, which is what LOW blocks ask of it (SegBlocks trains its
    networks with the block execution for the same reason). ``freeze_bn`` normalises with
    the starting running statistics and leaves them alone: small fine-tuning batches, half of
    them at half resolution, would otherwise move statistics the full-resolution path relies on.
    With ``pairs`` and ``consistency_weight`` > 0 each step also takes that share of the
    temporal consistency loss on video batch ``step`` (training/consistency.py).
    """

    def __init__(self, model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                 preprocessing: Preprocessing, device: torch.device, amp: bool = True,
                 low_weight: float = 0.0, freeze_bn: bool = False,
                 pairs: PairBatches | None = None, consistency_weight: float = 0.0) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.preprocessing, self.device = preprocessing, device
        self.low_weight, self.freeze_bn = low_weight, freeze_bn
        self.pairs = pairs if consistency_weight > 0 else None
        self.consistency_weight = consistency_weight
        self.cuda = device.type == "cuda"
        self.amp = amp and self.cuda
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = self.preprocessing.normalize(images.to(self.device, non_blocking=True).float())
        return x.contiguous(memory_format=torch.channels_last) if self.cuda else x

    def train_mode(self) -> None:
        """Training mode, with BatchNorm layers in eval mode when ``freeze_bn``."""
        self.model.train()
        if self.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, step: int = 0) -> float:
        self.train_mode()
        x = self.prepare(images)
        y = labels.to(self.device, non_blocking=True)
        autocast = (torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext())
        with autocast:
            logits = self.model(x)
            low = low_path_logits(self.model, x) if self.low_weight > 0 else None
        loss = self.loss_fn(logits.float(), y)
        if low is not None:
            loss = loss + self.low_weight * self.loss_fn(low.float(), y)
        if self.pairs is not None:
            current, previous, grid, valid = self.pairs.batch(step)
            with autocast:
                now, before = self.model(self.prepare(current)), self.model(self.prepare(previous))
            loss = loss + self.consistency_weight * consistency_loss(now, before, grid, valid)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())


@torch.inference_mode()
def evaluate(model: nn.Module, samples: Sequence[tuple[np.ndarray, np.ndarray]],
             preprocessing: Preprocessing, num_classes: int, device: torch.device,
             amp: bool = True, low: bool = False) -> ConfusionMatrix:
    """Confusion matrix of ``model`` on full-size ``(image, labels)`` samples, one at a time
    (``low``: of its LOW path, :func:`low_path_logits`)."""
    model.eval()
    cm = ConfusionMatrix(num_classes)
    cuda = device.type == "cuda"
    for image, labels in samples:
        x = preprocessing.to_tensor(image, device)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16) if cuda and amp else nullcontext():
            logits = low_path_logits(model, x) if low else model(x)
        cm.update(logits[0, :num_classes].argmax(0), torch.from_numpy(labels),
                  ignore_index=CAMVID_IGNORE_INDEX)
    return cm


class Trainer:
    """Runs epochs with checkpoints (``last.pt``, ``best.pt``), a JSONL log and weight export.

    ``out_dir/last.pt`` is written at every epoch end and every ``checkpoint_every_s``;
    :meth:`resume` continues from it mid-epoch (the data order is a function of the seed and
    epoch). With ``export_path`` the best (by validation mIoU) or, before the first
    validation, the latest weights are exported as fp16 whenever they change.
    """

    def __init__(self, model: nn.Module, train_set: Dataset, loss_fn: nn.Module,
                 preprocessing: Preprocessing, config: TrainConfig, out_dir: str | Path,
                 device: torch.device, val_samples: Sequence | None = None,
                 num_classes: int = 11, export_path: str | Path | None = None,
                 stream: TextIO | None = None, pairs: PairBatches | None = None) -> None:
        self.model, self.train_set, self.config = model, train_set, config
        self.device, self.val_samples, self.num_classes = device, val_samples, num_classes
        self.preprocessing = preprocessing
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.export_path = Path(export_path) if export_path else None
        self.log = JsonlLog(self.out_dir / "log.jsonl", stream)
        if config.consistency_weight > 0 and pairs is None:
            raise ValueError("a consistency weight needs video pairs to apply it to")
        self.optimizer = build_optimizer(model, config.lr, config.encoder_lr_ratio,
                                         config.weight_decay)
        self.step_runner = StepRunner(model, loss_fn, self.optimizer, preprocessing, device,
                                      config.amp, config.low_weight, config.freeze_bn,
                                      pairs, config.consistency_weight)
        self.steps_per_epoch = len(train_set) // config.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch size {config.batch_size} > {len(train_set)} training samples")
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.elapsed_s = 0.0  # wall time spent in this run so far (over resumes)
        self.best_miou: float | None = None
        self.history: list[float] = []  # training losses of this process

    # -- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                    scaler=self.step_runner.scaler.state_dict(), epoch=self.epoch,
                    batch_in_epoch=self.batch_in_epoch, step=self.step,
                    elapsed_s=self.elapsed_s, best_miou=self.best_miou,
                    config=json.loads(json.dumps(asdict(self.config), default=str)))

    def save(self, name: str = "last.pt") -> Path:
        return save_checkpoint(self.out_dir / name, **self.state())

    def resume(self, path: str | Path | None = None) -> bool:
        """Load ``path`` (default ``out_dir/last.pt``); False when there is nothing to resume."""
        path = Path(path) if path else self.out_dir / "last.pt"
        if not path.is_file():
            return False
        ckpt = load_checkpoint(path)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.step_runner.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.batch_in_epoch = int(ckpt["epoch"]), int(ckpt["batch_in_epoch"])
        self.step, self.elapsed_s = int(ckpt["step"]), float(ckpt["elapsed_s"])
        self.best_miou = ckpt["best_miou"]
        self.log.write({"event": "resume", "from": str(path), "epoch": self.epoch,
                        "step": self.step, "elapsed_s": self.elapsed_s})
        return True

    # -- pieces ------------------------------------------------------------------------------
    def progress(self) -> float:
        return training_progress(self.step, self.total_steps, self.elapsed_s,
                                 self.config.time_budget_s)

    def finished(self) -> bool:
        return self.step >= self.total_steps or self.progress() >= 1.0

    def validate(self) -> float | None:
        """Validation mIoU; with a LOW-path loss also the LOW path's, and the score that picks
        the exported weights is then the mean of both (what the training optimises)."""
        if not self.val_samples:
            return None
        t0 = time.perf_counter()
        args = (self.model, self.val_samples, self.preprocessing, self.num_classes,
                self.device, self.config.amp)
        cm = evaluate(*args)
        miou = cm.mean_iou() * 100.0
        iou = [round(float(v) * 100, 2) for v in cm.iou()]
        record = {"event": "val", "epoch": self.epoch, "step": self.step,
                  "miou": round(miou, 2), "pixel_acc": round(cm.pixel_accuracy() * 100.0, 2),
                  "iou": iou}
        score = miou
        if self.config.low_weight > 0:
            low_miou = evaluate(*args, low=True).mean_iou() * 100.0
            score = (miou + low_miou) / 2
            record.update(low_miou=round(low_miou, 2), score=round(score, 2))
        record["val_s"] = round(time.perf_counter() - t0, 1)
        self.log.write(record)
        if self.best_miou is None or score > self.best_miou:
            self.best_miou = score
            save_checkpoint(self.out_dir / "best.pt", model=self.model.state_dict(),
                            epoch=self.epoch, step=self.step, miou=miou, score=score)
            self.export()
        return miou

    def export(self) -> None:
        if self.export_path is not None:
            export_weights(self.model, self.export_path)
            self.log.write({"event": "export", "path": str(self.export_path),
                            "epoch": self.epoch, "step": self.step, "best_miou": self.best_miou})

    # -- loop --------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train until the step count or the time budget is reached; returns a summary."""
        cfg = self.config
        self.log.write({"event": "start", "steps_per_epoch": self.steps_per_epoch,
                        "total_steps": self.total_steps, "device": str(self.device),
                        "config": json.loads(json.dumps(asdict(cfg), default=str))})
        if cfg.validate_at_start and self.step == 0 and cfg.val_every:
            self.validate()
        t_last = time.perf_counter()
        t_ckpt = t_last
        window: list[float] = []
        t_window = t_last
        while not self.finished() and self.epoch < cfg.epochs:
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(self.epoch)
            sampler = EpochSampler(len(self.train_set), cfg.seed, self.epoch,
                                   self.batch_in_epoch * cfg.batch_size)
            loader = make_loader(self.train_set, cfg.batch_size, cfg.workers, sampler,
                                 pin_memory=self.device.type == "cuda")
            for images, labels in loader:
                factor = lr_factor(self.progress(), cfg.schedule, cfg.warmup)
                set_lr(self.optimizer, factor)
                loss = self.step_runner(images, labels, self.step)
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss} at step {self.step}")
                self.step += 1
                self.batch_in_epoch += 1
                now = time.perf_counter()
                self.elapsed_s += now - t_last
                t_last = now
                window.append(loss)
                self.history.append(loss)
                if self.step % cfg.log_every == 0 or self.step == 1:
                    self.log.write({"event": "train", "epoch": self.epoch, "step": self.step,
                                    "loss": round(sum(window) / len(window), 4),
                                    "lr": self.optimizer.param_groups[-1]["lr"],
                                    "s_per_iter": round((now - t_window) / len(window), 3),
                                    "elapsed_s": round(self.elapsed_s, 1),
                                    "progress": round(self.progress(), 4)})
                    window, t_window = [], now
                if now - t_ckpt > cfg.checkpoint_every_s:
                    self.save()
                    t_ckpt = now
                if self.finished():
                    break
            if self.batch_in_epoch >= self.steps_per_epoch:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            done = self.finished() or self.epoch >= cfg.epochs
            if cfg.val_every and (self.epoch % cfg.val_every == 0 or done):
                self.validate()
            elif self.best_miou is None:
                self.export()  # no validation yet: keep the latest weights exported
            now = time.perf_counter()
            self.elapsed_s += now - t_last
            t_last = t_ckpt = now
            self.save()
        if self.best_miou is None:
            self.export()
        summary = {"event": "done", "epoch": self.epoch, "step": self.step,
                   "elapsed_s": round(self.elapsed_s, 1), "best_miou": self.best_miou}
        self.log.write(summary)
        return summary
