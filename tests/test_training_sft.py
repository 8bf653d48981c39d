"""Stage-1 SFT on the tiny model: packed == unpacked, accumulation == full batch, exact resume
after SIGKILL, DDP and FSDP2 == single process, the final export, and the CLI."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from longhorizon.core import TrajectoryStore
from longhorizon.training import SFTConfig, load_config, read_metrics, run_sft
from longhorizon.training.data import DataConfig, Sample, build_samples
from longhorizon.training.loss import micro_batch_loss, step_denominator
from longhorizon.training.packing import collate, padding_batch
from longhorizon.training.teach import TEACHER_METADATA, find_teachers, read_teacher
from tests.test_training_data import make_traj

WORDS = [
    "the",
    "agent",
    "reads",
    "pages",
    "then",
    "searches",
    "for",
    "evidence",
    "and",
    "writes",
    "code",
    "to",
    "check",
    "a",
    "fact",
]
CPU = torch.device("cpu")


def encoded_trajectories(tokenizer, n: int) -> list:  # type: ignore[no-untyped-def]
    """Trajectories of 1-3 turns of random words, as the tiny model's tokenizer encodes them."""
    rng = random.Random(0)

    def text(lo: int, hi: int) -> list[int]:
        return tokenizer.encode(" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))))

    domains = ["search", "science", "coding"]
    return [
        make_traj(
            f"t{i}",
            domains[i % 3],
            turns=[(text(4, 24), text(2, 16)) for _ in range(rng.randint(1, 3))],
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_path: str):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(tiny_llama_path)


@pytest.fixture(scope="module")
def samples(tokenizer) -> list[Sample]:  # type: ignore[no-untyped-def]
    return build_samples(encoded_trajectories(tokenizer, 6), DataConfig(), max_len=256)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("sft") / "trajectories"
    with TrajectoryStore(root) as s:
        s.extend(encoded_trajectories(tokenizer, 18))
    return root


def tiny_model(path: str, attn: str = "sdpa"):  # type: ignore[no-untyped-def]
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float64, attn_implementation=attn
    )
    return model.train()


def loss_and_grads(  # type: ignore[no-untyped-def]
    model, batches, normalisation: str, chunk: int | None = None
) -> tuple[float, list[torch.Tensor]]:
    """Accumulate micro-batch losses normalised over all of them, as one optimizer step does."""
    model.zero_grad()
    denominator = step_denominator(batches, normalisation)
    total = 0.0
    for batch in batches:
        loss = micro_batch_loss(model, batch, denominator, normalisation, CPU, None, chunk).loss
        loss.backward()
        total += loss.item()
    return total, [p.grad.clone() for p in model.parameters()]


def reference_loss(model, samples: list[Sample], normalisation: str) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Plain per-sample cross-entropy, one unpacked forward pass per sample.

    The output layer is applied to the trained positions only, to keep the float64 backward
    of a 49K-word vocabulary cheap; nothing else of the packing code is involved.
    """
    per_sample = []
    for s in samples:
        ids = torch.from_numpy(s.input_ids.astype("int64"))[None]
        trained = torch.from_numpy(s.loss_mask[1:].astype(bool))
        hidden = model.model(input_ids=ids).last_hidden_state[0, :-1][trained]
        targets = ids[0, 1:][trained]
        per_sample.append(F.cross_entropy(model.lm_head(hidden), targets, reduction="none"))
    if normalisation == "token":
        return torch.cat(per_sample).mean()
    return torch.stack([x.mean() for x in per_sample]).mean()


def grads_of(model, loss: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    model.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in model.parameters()]


def assert_close(a: list[torch.Tensor], b: list[torch.Tensor], tol: float = 1e-9) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=tol, rtol=tol)


# ---- loss references ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(tiny_llama_path: str) -> dict[str, object]:
    """One float64 tiny-llama per attention implementation, shared by the reference tests."""
    return {attn: tiny_model(tiny_llama_path, attn) for attn in ("sdpa", "eager")}


@pytest.mark.parametrize(
    ("attn", "isolation", "normalisation"),
    [
        ("sdpa", "position_ids", "token"),
        ("sdpa", "mask", "token"),
        ("eager", "mask", "token"),
        ("eager", "position_ids", "token"),
        ("sdpa", "position_ids", "sample"),
        ("eager", "mask", "sample"),
    ],
)
def test_packed_loss_and_grads_equal_sample_by_sample(
    models: dict, samples: list[Sample], attn: str, isolation: str, normalisation: str
) -> None:
    model = models[attn]
    packed = collate(samples, isolation, torch.float64)  # type: ignore[arg-type]
    assert packed.num_samples == len(samples) > 3
    loss, grads = loss_and_grads(model, [packed], normalisation)
    expected = reference_loss(model, samples, normalisation)
    # transformers' eager attention takes its softmax in float32, whatever the model dtype.
    tol = 1e-10 if attn == "sdpa" else 1e-7
    assert loss == pytest.approx(expected.item(), abs=tol)
    assert_close(grads, grads_of(model, expected), tol=tol * 10)


def test_packed_loss_on_qwen2(tiny_qwen2_path: str, samples: list[Sample]) -> None:
    model = tiny_model(tiny_qwen2_path)
    loss, grads = loss_and_grads(model, [collate(samples)], "token")
    expected = reference_loss(model, samples, "token")
    assert loss == pytest.approx(expected.item(), abs=1e-10)
    assert_close(grads, grads_of(model, expected))


@pytest.mark.parametrize("normalisation", ["token", "sample"])
@pytest.mark.parametrize("chunk", [None, 16])
def test_gradient_accumulation_equals_the_full_batch(
    models: dict, samples: list[Sample], normalisation: str, chunk: int | None
) -> None:
    model = models["sdpa"]
    full_loss, full_grads = loss_and_grads(model, [collate(samples)], normalisation, chunk)
    micro = [collate(samples[:2]), collate(samples[2:3]), collate(samples[3:])]
    acc_loss, acc_grads = loss_and_grads(model, micro, normalisation, chunk)
    assert acc_loss == pytest.approx(full_loss, abs=1e-10)
    assert_close(acc_grads, full_grads)


@pytest.mark.parametrize(
    ("normalisation", "isolation", "chunk"),
    [
        ("token", "mask", 1),
        ("token", "position_ids", 7),
        ("sample", "mask", 64),
        ("token", "mask", 4096),
    ],
)
def test_chunked_loss_equals_the_materialised_loss_end_to_end(
    models: dict, samples: list[Sample], normalisation: str, isolation: str, chunk: int
) -> None:
    """The trainer's default path (`loss.chunk_size`): same loss, same gradient of every
    parameter (the output layer's through the hook, the rest through the hidden states)."""
    model = models["sdpa"]
    packed = collate(samples, isolation, torch.float64)  # type: ignore[arg-type]
    loss, grads = loss_and_grads(model, [packed], normalisation, chunk)
    ref_loss, ref_grads = loss_and_grads(model, [packed], normalisation)
    assert loss == pytest.approx(ref_loss, abs=1e-12)
    assert_close(grads, ref_grads, tol=1e-12)
    assert all(g.abs().sum() > 0 for g in grads[-2:])  # the last norm and the output layer


def test_a_padding_micro_batch_gives_zero_loss_and_zero_gradients(
    models: dict, samples: list[Sample]
) -> None:
    padding = padding_batch(0)  # what a rank with no rows left trains on
    for chunk in (None, 8):
        loss, grads = loss_and_grads(models["sdpa"], [padding], "token", chunk)
        assert loss == 0.0 and all(g.abs().max() == 0 for g in grads)


# ---- the trainer --------------------------------------------------------------------------
def write_config(path: Path, store: Path, out: Path, **extra: object) -> Path:
    fields = {
        "model": "tiny-llama",
        "data": {"paths": [str(store)]},
        "max_len": 96,
        "batch_size": 4,
        "lr": 1e-3,
        "epochs": 2,
        "save_every": 2,
        "output_dir": str(out),
        "num_threads": 1,
        "tensorboard": False,
        **extra,
    }
    path.write_text(json.dumps(fields))  # JSON is YAML
    return path


def losses(run: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run)]


def launch(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400", **(env or {})}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=240)


def sft_module(config: Path, *overrides: str) -> list[str]:
    sets = [x for o in overrides for x in ("--set", o)]
    return ["-m", "longhorizon.training.sft", "--config", str(config), *sets]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, store: Path) -> tuple[Path, Path]:
    """An uninterrupted in-process run: the reference curve of the other runs."""
    root = tmp_path_factory.mktemp("baseline")
    config = write_config(root / "c.yaml", store, root / "run")
    threads = torch.get_num_threads()
    try:
        result = run_sft(load_config(SFTConfig, config))
    finally:
        torch.set_num_threads(threads)
    assert result.steps == 6 and result.tokens_per_s > 0  # 11 packed rows, 3 steps per epoch
    return config, root / "run"


def test_a_run_logs_every_step_and_exports_a_loadable_model(baseline: tuple[Path, Path]) -> None:
    _, run = baseline
    records = read_metrics(run)
    assert [r["step"] for r in records] == list(range(1, 7))
    assert records[-1]["loss"] < records[0]["loss"]  # lr 1e-3 on random weights: it learns
    assert records[0]["lr"] == pytest.approx(1e-3)  # warmup ceil(5% of 6) = 1 step
    assert all(r["trained_tokens"] > 0 and r["tokens_per_s"] > 0 for r in records)
    assert (run / "config.yaml").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-00000002",
        "step-00000004",
    ]
    meta = json.loads((run / "final" / "longhorizon_sft.json").read_text())
    assert meta["steps"] == 6 and set(meta["domains"]) == {"coding", "science", "search"}
    model = AutoModelForCausalLM.from_pretrained(run / "final")
    assert AutoTokenizer.from_pretrained(run / "final").eos_token_id is not None
    assert model.config.architectures == ["LlamaForCausalLM"]


def test_resume_after_sigkill_reproduces_the_loss_curve_exactly(
    baseline: tuple[Path, Path], tmp_path: Path
) -> None:
    config, run = baseline
    out = f"output_dir={tmp_path / 'run'}"
    killed = launch(
        [sys.executable, *sft_module(config, out)], {"LONGHORIZON_SFT_KILL_AT_STEP": "5"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert len(losses(tmp_path / "run")) == 5  # step 5 was logged after the step-4 checkpoint
    resumed = launch([sys.executable, *sft_module(config, out)])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout and "step-00000004" in resumed.stdout
    assert losses(tmp_path / "run") == losses(run)  # bit for bit


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def test_two_process_ddp_run_matches_single_process(
    baseline: tuple[Path, Path], tmp_path: Path
) -> None:
    """The whole curve (its last step of each epoch pads one rank)."""
    config, run = baseline
    sets = [f"output_dir={tmp_path / 'run'}", "parallel=ddp"]
    done = launch([*TORCHRUN, *sft_module(config, *sets)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert losses(tmp_path / "run") == pytest.approx(losses(run), abs=1e-6)
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "final") is not None


@pytest.fixture(scope="module")
def fsdp2_run(baseline: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 2-process FSDP2 run: the reference curve of its resumed runs."""
    config, _ = baseline
    out = tmp_path_factory.mktemp("fsdp2") / "run"
    done = launch([*TORCHRUN, *sft_module(config, f"output_dir={out}", "parallel=fsdp2")])
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_two_process_fsdp2_run_matches_single_process(
    baseline: tuple[Path, Path], fsdp2_run: Path
) -> None:
    assert losses(fsdp2_run) == pytest.approx(losses(baseline[1]), abs=1e-6)
    assert AutoModelForCausalLM.from_pretrained(fsdp2_run / "final") is not None


def test_fsdp2_checkpoints_are_sharded_and_resume_exactly(
    baseline: tuple[Path, Path], fsdp2_run: Path, tmp_path: Path
) -> None:
    """Each rank writes its own shards (torch.distributed.checkpoint), nothing gathered to rank
    0; a run killed after step 5 resumes from step 4 and repeats the curve bit for bit."""
    step4 = fsdp2_run / "checkpoints" / "step-00000004"
    shards = sorted(p.name for p in (step4 / "sharded").iterdir())
    assert shards == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    assert not (step4 / "model.pt").exists() and not (step4 / "optimizer.pt").exists()
    config, out = baseline[0], tmp_path / "run"
    args = [*TORCHRUN, *sft_module(config, f"output_dir={out}", "parallel=fsdp2")]
    killed = launch(args, {"LONGHORIZON_SFT_KILL_AT_STEP": "5"})
    assert killed.returncode != 0 and len(losses(out)) == 5
    resumed = launch(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and "step-00000004" in resumed.stdout
    assert losses(out) == losses(fsdp2_run)  # bit for bit


def test_a_sharded_checkpoint_resumes_in_one_process(
    baseline: tuple[Path, Path], fsdp2_run: Path, tmp_path: Path
) -> None:
    """DCP reshards on load: FSDP2's 2-rank shards fill a single process's full tensors."""
    config, out = baseline[0], tmp_path / "run"
    shutil.copytree(fsdp2_run / "checkpoints" / "step-00000004", out / "checkpoints" / "step-4")
    threads = torch.get_num_threads()
    try:
        run_sft(load_config(SFTConfig, config, [f"output_dir={out}"]))
    finally:
        torch.set_num_threads(threads)
    assert losses(out) == pytest.approx(losses(fsdp2_run)[4:], abs=1e-6)


# ---- CLI ----------------------------------------------------------------------------------
def test_linear_attention_carries_state_across_packed_samples_so_packing_is_refused(
    store: Path, samples: list[Sample], tmp_path: Path
) -> None:
    """Qwen3.5 (the agents-a1 student's family): its linear-attention layers carry a state
    from one packed sample into the next, so a packed sample's logits differ from its own
    (the first one's are untouched); SFT refuses `packing: true` for it before writing
    anything, and trains with `packing: false`, under FSDP2 too (each layer's experts are
    one parameter, sharded like any other): 2 ranks give the one-process losses."""
    from longhorizon.models.registry import resolve_model

    model = AutoModelForCausalLM.from_pretrained(resolve_model("tiny-qwen3_5_moe")).eval()
    first, second = samples[0], samples[1]
    batch = collate([first, second])
    with torch.no_grad():
        packed = model(input_ids=batch.input_ids, position_ids=batch.position_ids).logits[0]
        alone = [
            model(input_ids=torch.from_numpy(s.input_ids.astype("int64"))[None]).logits[0]
            for s in (first, second)
        ]
    n = len(first)
    torch.testing.assert_close(packed[:n], alone[0], atol=1e-5, rtol=1e-5)
    assert (packed[n:] - alone[1]).abs().max() > 1e-2

    out = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", store, out, model="tiny-qwen3_5_moe", max_steps=2)
    with pytest.raises(ValueError, match="linear_attention layers carry a state across them"):
        run_sft(load_config(SFTConfig, config))
    assert not out.exists()
    threads = torch.get_num_threads()
    try:
        result = run_sft(load_config(SFTConfig, config, ["packing=false"]))
    finally:
        torch.set_num_threads(threads)
    assert result.steps == 2 and losses(out)[0] > 0
    sharded = tmp_path / "fsdp2"
    sets = [f"output_dir={sharded}", "packing=false", "parallel=fsdp2"]
    done = launch([*TORCHRUN, *sft_module(config, *sets)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert losses(sharded) == pytest.approx(losses(out), abs=1e-6)


def test_cli_sft_and_teach(store: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from longhorizon.cli.main import app

    runner = CliRunner()
    config = write_config(tmp_path / "sft.yaml", store, tmp_path / "sft", max_steps=2)
    result = runner.invoke(app, ["sft", "--config", str(config), "--dry-run", "--set", "lr=3e-4"])
    assert result.exit_code == 0 and "lr: 0.0003" in result.output
    result = runner.invoke(app, ["sft", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert len(read_metrics(tmp_path / "sft")) == 2

    teach = tmp_path / "teach.yaml"
    stage = {"data": {"paths": [str(store)]}, "overrides": {"max_steps": 1}}
    teach.write_text(
        json.dumps(
            {
                "init": str(tmp_path / "sft" / "final"),
                "output_dir": str(tmp_path / "teachers"),
                "sft": {"max_len": 96, "batch_size": 2, "tensorboard": False, "num_threads": 1},
                "stages": [{"name": "reasoning", **stage}, {"name": "tools", **stage}],
            }
        )
    )
    result = runner.invoke(app, ["teach", "--domain", "science", "--config", str(teach)])
    assert result.exit_code == 0, result.output
    teacher = tmp_path / "teachers" / "science" / "teacher"
    info = read_teacher(teacher)
    assert info.domain == "science" and [s["name"] for s in info.stages] == ["reasoning", "tools"]
    assert (teacher / TEACHER_METADATA).exists() and (teacher / "config.json").exists()
    assert find_teachers(tmp_path / "teachers") == {"science": teacher}
    stage1 = json.loads(
        (tmp_path / "teachers/science/stage-1-reasoning/final/longhorizon_sft.json").read_text()
    )
    assert set(stage1["domains"]) == {"science"}  # the teacher sees its own domain only
