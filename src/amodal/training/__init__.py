"""Training of the stage-1 models (diffusion segmenter and regression twin) on Accelerate."""

from amodal.training.config import DataConfig, TrainConfig
from amodal.training.loop import TrainResult, export_checkpoint, train_segmentation

__all__ = ["DataConfig", "TrainConfig", "TrainResult", "export_checkpoint", "train_segmentation"]
