"""Stage-1 SFT and Stage-2 domain teachers: trajectories -> packed samples -> trained checkpoints.

Public surface for later stages (distillation reuses the data builder, packing and checkpoints):
- data:     DataConfig, Sample, build_samples, load_samples, load_trajectories
- packing:  best_fit_decreasing, pack_samples, collate, MicroBatch
- training: SFTConfig, load_config, run_sft, SFTTrainer, SFTResult
- teachers: TeachConfig, TeachStage, run_teach, read_teacher, find_teachers
- checkpoints and logs: latest_checkpoint, checkpoint_path, TrainerState, read_metrics
"""

from longhorizon.training.checkpoint import TrainerState, checkpoint_path, latest_checkpoint
from longhorizon.training.config import SFTConfig, load_config
from longhorizon.training.data import (
    DataConfig,
    Sample,
    build_samples,
    load_samples,
    load_trajectories,
)
from longhorizon.training.metrics import read_metrics
from longhorizon.training.packing import MicroBatch, best_fit_decreasing, collate, pack_samples
from longhorizon.training.sft import SFTResult, SFTTrainer, run_sft
from longhorizon.training.teach import (
    TeachConfig,
    TeacherInfo,
    TeachStage,
    find_teachers,
    read_teacher,
    run_teach,
)

__all__ = [
    "DataConfig",
    "MicroBatch",
    "SFTConfig",
    "SFTResult",
    "SFTTrainer",
    "Sample",
    "TeachConfig",
    "TeachStage",
    "TeacherInfo",
    "TrainerState",
    "best_fit_decreasing",
    "build_samples",
    "checkpoint_path",
    "collate",
    "find_teachers",
    "latest_checkpoint",
    "load_config",
    "load_samples",
    "load_trajectories",
    "pack_samples",
    "read_metrics",
    "read_teacher",
    "run_sft",
    "run_teach",
]
