"""Stage-2 domain teachers trained by SFT: one or more stages of domain data, in sequence.

Each stage is an ordinary SFT run on trajectories of the teacher's domain only, starting from
the previous stage's final model (the first from `init`: the base model or the Stage-1 SFT
checkpoint). The science teacher of the report, for instance, takes two stages: reasoning
traces, then tool-augmented traces. Layout under `output_dir/DOMAIN/`:

    stage-1-NAME/ ...      an SFT run dir (config, metrics, checkpoints, final/)
    stage-2-NAME/ ...      the same, without final/ (the last stage writes the teacher)
    teacher/               save_pretrained model + tokenizer + longhorizon_teacher.json

Rerunning resumes: finished stages are skipped, an interrupted one continues from its latest
checkpoint. GRPO stages build on these teachers: the pipeline (`pipeline/teachers.py`) writes
the last SFT stage to its own `final/` (`final_dir`) and trains GRPO from it into `teacher/`.

A generalist teacher (`domain: generalist`, `domains`: every domain) learns from all domains'
trajectories at once; the distillation stage can then route every domain to it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer
from rich.console import Console

from longhorizon.training.config import SFTConfig, omit_at_default
from longhorizon.training.data import DataConfig
from longhorizon.training.sft import run_sft

TEACHER_METADATA = "longhorizon_teacher.json"
TEACHER_DIR = "teacher"
GENERALIST = "generalist"  # the label of one teacher trained on every domain


class TeachStage(BaseModel):
    """One SFT stage: its data (filtered to the teacher's domain) and SFTConfig overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    data: DataConfig
    overrides: dict[str, Any] = Field(default_factory=dict)  # e.g. {lr: 5e-6, epochs: 2}


class TeachConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    domain: str | None = None  # set here or with `--domain`
    init: str = "tiny-llama"  # base model or Stage-1 SFT checkpoint
    output_dir: Path = Path("runs/teachers")
    sft: SFTConfig = SFTConfig()  # hyper-parameters shared by every stage
    stages: list[TeachStage] = Field(min_length=1)
    # The trajectory domains it learns from (None: its own `domain`); a generalist names all.
    domains: tuple[str, ...] | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Added after teacher stages were cached: at its default it stays out of their keys.
        return omit_at_default(self, handler(self), ("domains",))

    def trained_domains(self) -> tuple[str, ...]:
        """The domains whose trajectories it learns from (and whose benches it is scored on)."""
        return self.domains or (self.root().name,)

    def root(self) -> Path:
        if not self.domain:
            raise ValueError("a teacher needs a domain (config `domain` or --domain)")
        return self.output_dir / self.domain

    def teacher_dir(self) -> Path:
        return self.root() / TEACHER_DIR


class TeacherInfo(BaseModel):
    """What `longhorizon_teacher.json` records: the distillation stage routes by `domain`."""

    schema_version: int = 1
    domain: str
    init: str
    stages: list[dict[str, Any]]
    created_at: datetime


def stage_configs(cfg: TeachConfig, final_dir: Path | None = None) -> list[SFTConfig]:
    """The SFT config of each stage, chained: stage i starts from stage i-1's final model; the
    last writes `final_dir` (default: the teacher directory)."""
    root, configs = cfg.root(), []
    model = cfg.init
    base = cfg.sft.model_dump(exclude={"model", "data", "output_dir", "final_dir"})
    for i, stage in enumerate(cfg.stages, start=1):
        last = i == len(cfg.stages)
        data = stage.data.model_copy(update={"domains": cfg.trained_domains(), "mix": None})
        fields = {
            **base,
            **stage.overrides,
            "model": model,
            "data": data,
            "output_dir": root / f"stage-{i}-{stage.name}",
            "final_dir": (final_dir or cfg.teacher_dir()) if last else None,
        }
        stage_cfg = SFTConfig.model_validate(fields)
        configs.append(stage_cfg)
        model = str(stage_cfg.final_path)
    return configs


def teacher_info(cfg: TeachConfig, configs: list[SFTConfig]) -> TeacherInfo:
    stages = [
        {
            "name": stage.name,
            "run_dir": str(c.output_dir),
            "data": [str(p) for p in c.data.paths],
            "config_fingerprint": c.fingerprint(),
        }
        for stage, c in zip(cfg.stages, configs, strict=True)
    ]
    domain = cfg.root().name  # root() checks that the domain is set
    return TeacherInfo(domain=domain, init=cfg.init, stages=stages, created_at=datetime.now(UTC))


def run_teach(
    cfg: TeachConfig, console: Console | None = None, final_dir: Path | None = None
) -> Path:
    """Train every stage in order; returns the last stage's final model: the teacher
    checkpoint directory (with its metadata), or `final_dir` when given (a later stage, GRPO,
    makes the teacher from it)."""
    console = console or Console()
    configs = stage_configs(cfg, final_dir)
    info = teacher_info(cfg, configs)
    for i, stage_cfg in enumerate(configs):
        console.rule(f"teacher {cfg.domain}: stage {i + 1}/{len(configs)} {cfg.stages[i].name}")
        last = i == len(configs) - 1 and final_dir is None
        meta = {TEACHER_METADATA: info.model_dump(mode="json")} if last else None
        run_sft(stage_cfg, console, final_metadata=meta)
    return configs[-1].final_path


def read_teacher(path: Path) -> TeacherInfo:
    """The metadata of a teacher checkpoint directory."""
    return TeacherInfo.model_validate(json.loads((Path(path) / TEACHER_METADATA).read_text()))


def find_teachers(root: Path) -> dict[str, Path]:
    """domain -> teacher checkpoint dir, for every teacher under `root` (e.g. runs/teachers)."""
    found = {}
    for meta in sorted(Path(root).glob(f"*/{TEACHER_DIR}/{TEACHER_METADATA}")):
        found[read_teacher(meta.parent).domain] = meta.parent
    return found
