"""evaluation layer of seg_accel_ros."""

from seg_accel_ros.evaluation.evaluate import EvalReport, evaluate
from seg_accel_ros.evaluation.metrics import ConfusionMatrix

__all__ = ["ConfusionMatrix", "EvalReport", "evaluate"]
