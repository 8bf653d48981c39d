"""One on-policy distillation step: ours (SVA, k = 64) vs TRL's `DistillationTrainer` (reverse KL).

Same student (tiny-llama), teacher (tiny-tool-caller), tokenizer (SmolLM2's, V = 49,152), chat
prompts, sampling (temperature 1, no top-k/top-p), generation length, batch, AdamW settings,
float32 and no gradient checkpointing on both sides, on this machine's CPU.

- ours: refresh the rollout snapshot, `HFBackend.generate_sync` on it, the teacher's top-k at the
  generated positions by `distill.scoring.score_in_process` (the Distiller's in-process teacher
  path), then `distill.step.optimizer_update`, the function every Distiller update calls (batch
  objective, backward, clipping, AdamW, scheduler), with the optimizer and schedule built by
  training/optim from a DistillConfig.
- TRL: `trl.DistillationTrainer` (on-policy by construction in trl 1.16), beta = 1 (generalised
  JSD with beta = 1: full-vocabulary reverse KL), `transformers` generation, `trainer.train()`.

Each side runs in its own fresh subprocess, in the order ours, TRL, ours, TRL; each subprocess
runs `--warmup-steps` steps and times the next one, phase by phase. Peak RSS is ru_maxrss after
that step; "extra" subtracts the RSS after both models were loaded (libraries already imported).
Prints a table and writes bench/results/opd_vs_trl.json. TRL is optional (requirements-bench.txt):
if it cannot be imported or run, its rows say so, with the exact error.

    python bench/opd_vs_trl.py [--max-tokens 64] [--k 64] [--warmup-steps 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

from _common import REQUIREMENTS, require_peer, write_result
from _trl_step import (
    PhaseClock,
    chat_prompt_ids,
    failure,
    goals,
    phases_record,
    ratios,
    rss_now_mib,
    rss_peak_mib,
    rss_record,
    spawn,
    summarise,
    version,
    write_worker_result,
)

STUDENT, TEACHER = "tiny-llama", "tiny-tool-caller"
TOPICS = ["rivers", "the moon", "bread", "chess", "volcanoes", "music", "bees", "glass"]
PHASES = ("rollout", "teacher", "loss_fwd_bwd", "optimizer", "other")
PHASE_LABELS = {
    "rollout": "rollout (student generation)",
    "teacher": "teacher scoring",
    "loss_fwd_bwd": "loss forward + backward",
    "optimizer": "optimizer step",
    "other": "other (batching, bookkeeping)",
}
SEED = 0
INSTALL_PEER = "the peer is optional: pip install -r requirements-bench.txt (TRL 1.16)"


def prompt_texts(n: int) -> list[str]:
    return [f"Write a long essay about {TOPICS[i % len(TOPICS)]}." for i in range(n)]


def load_models(torch: Any) -> tuple[Any, Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from longhorizon.models.registry import resolve_model

    student_dir, teacher_dir = resolve_model(STUDENT), resolve_model(TEACHER)
    tokenizer = AutoTokenizer.from_pretrained(student_dir)
    student = AutoModelForCausalLM.from_pretrained(student_dir, dtype=torch.float32)
    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=torch.float32)
    return student, teacher, tokenizer


# ---- our side --------------------------------------------------------------------------------
def distill_config(args: argparse.Namespace) -> Any:
    """The DistillConfig of our side: the run settings the trainer's own set-up reads."""
    from longhorizon.distill import DistillConfig, DistillLossConfig, TeacherSpec

    loss = DistillLossConfig(
        kind="sva",
        k=args.k,
        aggregation=args.aggregation,
        monitor_coverage=not args.no_coverage,
        exclude_special=False,  # TRL's loss covers every id: the same support on both sides
    )
    return DistillConfig(
        model=STUDENT,
        teachers=(TeacherSpec(domain="bench", model=TEACHER),),
        tasks=(),
        loss=loss,
        lr=args.lr,
        schedule="constant",
        max_grad_norm=args.grad_clip,
        micro_batch_size=args.prompts,  # one batch of all sequences, as TRL's
        seed=SEED,
    )


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    import copy

    import torch

    from longhorizon.core import Message, SamplingParams
    from longhorizon.distill.batch import RolloutSample
    from longhorizon.distill.scoring import ScoreRequest, score_in_process
    from longhorizon.distill.step import StepSettings, optimizer_update
    from longhorizon.models.hf import HFBackend
    from longhorizon.training.optim import build_optimizer, build_scheduler

    torch.manual_seed(SEED)
    student, teacher_model, tokenizer = load_models(torch)
    rss_models = rss_now_mib()
    peak_models = rss_peak_mib()

    cfg = distill_config(args)
    snapshot = HFBackend(copy.deepcopy(student), tokenizer, model_id="snapshot")
    optimizer = build_optimizer(student, cfg)
    scheduler = build_scheduler(optimizer, cfg, args.warmup_steps + 1)
    settings = StepSettings(
        loss=cfg.loss,
        domains=["bench"],
        pad_id=tokenizer.pad_token_id or 0,
        micro_batch_size=cfg.micro_batch_size,
        max_grad_norm=cfg.max_grad_norm,
    )
    texts = prompt_texts(args.prompts)
    prompts = chat_prompt_ids(tokenizer, texts)
    rendered = [snapshot.renderer.prompt_ids([Message(role="user", content=t)]) for t in texts]
    adam_step = optimizer.step
    times: dict[str, float] = {}

    def timed_adam_step(*a: Any, **kw: Any) -> Any:  # instance-level timer, the code unchanged
        start = time.perf_counter()
        try:
            return adam_step(*a, **kw)
        finally:
            times["optimizer"] = time.perf_counter() - start

    optimizer.step = timed_adam_step  # type: ignore[method-assign]

    def step(index: int) -> dict[str, Any]:
        times.clear()
        start = time.perf_counter()
        # Rollout: refresh the snapshot (as Distiller does every step), sample on it.
        snapshot.model.load_state_dict(student.state_dict())
        params = SamplingParams(
            temperature=args.temperature, max_tokens=args.max_tokens, seed=SEED + index
        )
        completions = snapshot.generate_sync(prompts, params)
        t_rollout = time.perf_counter()
        times["rollout"] = t_rollout - start
        samples = [
            RolloutSample(
                "bench",
                c.prompt_ids + c.completion_ids,
                [0] * len(c.prompt_ids) + [1] * len(c.completion_ids),
            )
            for c in completions
        ]
        requests = [ScoreRequest("bench", s.input_ids, s.positions()) for s in samples]
        scores = score_in_process(teacher_model, requests, args.k)  # the Distiller's teacher path
        t_teacher = time.perf_counter()
        times["teacher"] = t_teacher - t_rollout
        # The trainer's own update: batch objective, backward, clipping, AdamW, scheduler.
        record = optimizer_update(student, optimizer, scheduler, samples, scores, settings)
        end = time.perf_counter()
        times["loss_fwd_bwd"] = end - t_teacher - times["optimizer"]
        coverage = [m["coverage"] for m in record["domains"].values()]
        return {
            "seconds": phases_record(times, end - start, PHASES),
            "loss": record["loss"],
            "coverage": coverage[0] if coverage else None,
            "trained_tokens": int(sum(m["tokens"] for m in record["domains"].values())),
            "completion_tokens": sum(len(c.completion_ids) for c in completions),
        }

    for i in range(args.warmup_steps):
        step(i)
    measured = step(args.warmup_steps)
    peak = rss_peak_mib()
    return {
        "status": "ok",
        "prompts_identical_to_renderer": rendered == prompts,
        "prompt_tokens": sum(len(p) for p in prompts),
        **measured,
        "rss": rss_record(rss_models, peak_models, peak),
    }


# ---- TRL's side ------------------------------------------------------------------------------
def trl_settings(args: argparse.Namespace, output_dir: str) -> dict[str, Any]:
    """The DistillationConfig we pass (everything that matters set explicitly)."""
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": args.prompts,
        "gradient_accumulation_steps": 1,
        "max_steps": args.warmup_steps + 1,
        "learning_rate": args.lr,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "optim": "adamw_torch",
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1e-8,
        "weight_decay": 0.0,
        "max_grad_norm": args.grad_clip,
        "bf16": False,
        "fp16": False,
        "gradient_checkpointing": False,
        "use_cpu": True,
        "beta": 1.0,
        "temperature": args.temperature,
        "top_p": 1.0,
        "top_k": 0,
        "max_completion_length": args.max_tokens,
        "use_vllm": False,
        "shuffle_dataset": False,
        "disable_dropout": True,
        "seed": SEED,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def run_trl(args: argparse.Namespace) -> dict[str, Any]:
    try:
        import torch
        from datasets import Dataset
        from trl import DistillationConfig, DistillationTrainer
    except Exception as exc:  # the package is optional: report, do not fake
        return failure("import", exc, INSTALL_PEER)

    torch.manual_seed(SEED)
    student, teacher, tokenizer = load_models(torch)
    rss_models = rss_now_mib()
    peak_models = rss_peak_mib()
    tokenizer.padding_side = "left"
    texts = prompt_texts(args.prompts)
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": t}] for t in texts]})
    clock = PhaseClock()

    with tempfile.TemporaryDirectory(prefix="opd_vs_trl_") as out_dir:
        settings = trl_settings(args, out_dir)
        try:
            config = DistillationConfig(**settings)
            trainer = DistillationTrainer(
                model=student,
                teacher_model=teacher,
                args=config,
                train_dataset=dataset,
                processing_class=tokenizer,
                callbacks=[clock.callback()],
            )
            teacher_module = trainer.accelerator.unwrap_model(trainer.teacher_model)
            # Instance-level timing wrappers around TRL's own methods (its code is unchanged).
            trainer._prepare_inputs = clock.timed("prepare_inputs", trainer._prepare_inputs)
            generate = clock.timed("generate", trainer._generate_single_turn)

            def counted_generate(*a: Any, **kw: Any) -> Any:
                completion_ids = generate(*a, **kw)
                clock.add("completion_tokens", float(sum(len(c) for c in completion_ids)))
                return completion_ids

            trainer._generate_single_turn = counted_generate
            trainer._get_last_hidden_state = clock.timed(
                "teacher",
                trainer._get_last_hidden_state,
                when=lambda model, *a, **kw: model is teacher_module,
            )
            trainer.training_step = clock.timed("training_step", trainer.training_step)
            trainer.train()
        except Exception as exc:
            return failure("run", exc)

    step = clock.steps[args.warmup_steps]
    # The teacher backbone runs inside compute_loss; the teacher's output layer runs inside
    # TRL's chunked divergence, together with the student's (counted as loss here).
    loss_fwd_bwd = step["training_step"] - step["prepare_inputs"] - step["teacher"]
    # Gradient clipping runs between backward and on_pre_optimizer_step: not timed separately,
    # so "optimizer" is the AdamW step alone and clipping lands in "other".
    times = {
        "rollout": step["prepare_inputs"],
        "teacher": step["teacher"],
        "loss_fwd_bwd": loss_fwd_bwd,
        "optimizer": step["optimizer_only"],
    }
    return {
        "status": "ok",
        "seconds": phases_record(times, step["total"], PHASES),
        "generate_only_s": step["generate"],
        "completion_tokens": int(step.get("completion_tokens", 0)),
        "rss": rss_record(rss_models, peak_models, clock.peak_after_step[args.warmup_steps]),
        "settings": {k: v for k, v in settings.items() if k != "output_dir"},
    }


# ---- orchestration ---------------------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    run = run_ours if args.worker == "ours" else run_trl
    try:
        result = run(args)
    except Exception as exc:
        result = failure("run", exc)
    write_worker_result(args, result)


def forwarded(args: argparse.Namespace) -> list[str]:
    out = [
        f"--prompts={args.prompts}",
        f"--max-tokens={args.max_tokens}",
        f"--temperature={args.temperature}",
        f"--k={args.k}",
        f"--lr={args.lr}",
        f"--grad-clip={args.grad_clip}",
        f"--warmup-steps={args.warmup_steps}",
        f"--threads={args.threads}",
        f"--aggregation={args.aggregation}",
    ]
    return [*out, "--no-coverage"] if args.no_coverage else out


def table(payload: dict[str, Any]) -> Any:
    from rich.table import Table

    s, summary = payload["settings"], payload["summary"]
    runs = [r for r in payload["runs"] if r["status"] == "ok"]
    ours, trl, ratio = summary["ours"], summary["trl"], payload["ratios"]
    title = (
        f"one OPD step, {s['prompts']} prompts x {s['max_new_tokens']} new tokens, "
        f"{STUDENT} <- {TEACHER}, V={s['vocab_size']:,}, float32, no grad ckpt, "
        f"{s['torch_threads']} threads (mean of {s['order'].count('ours')}+"
        f"{s['order'].count('trl')} fresh processes, order {'/'.join(s['order'])})"
    )
    t = Table(title=title)
    for column in ("metric", f"ours (SVA k={s['k']})", "TRL DistillationTrainer (beta=1)", "ratio"):
        t.add_column(column)

    def cell(side: dict[str, Any], get: Callable[[dict[str, Any]], float], fmt: str) -> str:
        return format(get(side), fmt) if side["status"] != "error" else "failed"

    for phase in PHASES:
        t.add_row(
            f"{PHASE_LABELS[phase]} (s)",
            cell(ours, lambda x, p=phase: x["seconds"][p], ".3f"),
            cell(trl, lambda x, p=phase: x["seconds"][p], ".3f"),
            "",
        )
    goal_time = ratio["time_trl_over_ours"]
    t.add_row(
        "[bold]step total (s)[/bold]",
        cell(ours, lambda x: x["seconds"]["total"], ".3f"),
        cell(trl, lambda x: x["seconds"]["total"], ".3f"),
        f"TRL/ours {goal_time:.2f}x (goal >= 1.5)" if goal_time else "n/a",
    )
    peak = ratio["peak_rss_ours_over_trl"]
    t.add_row(
        "step total per run (s)",
        *[
            " / ".join(f"{r['seconds']['total']:.2f}" for r in runs if r["side"] == side)
            for side in ("ours", "trl")
        ],
        "",
    )
    t.add_row(
        "peak RSS (MiB)",
        cell(ours, lambda x: x["rss"]["peak_mib"], ".0f"),
        cell(trl, lambda x: x["rss"]["peak_mib"], ".0f"),
        f"ours/TRL {peak:.2f} (goal <= 1)" if peak else "n/a",
    )
    extra = ratio.get("extra_rss_ours_over_trl")
    t.add_row(
        "extra RSS over models loaded (MiB)",
        cell(ours, lambda x: x["rss"]["extra_mib"], ".0f"),
        cell(trl, lambda x: x["rss"]["extra_mib"], ".0f"),
        f"ours/TRL {extra:.2f} (goal <= 1)" if extra else "n/a",
    )
    t.add_row(
        "completion tokens",
        cell(ours, lambda x: x["completion_tokens"], ".0f"),
        cell(trl, lambda x: x["completion_tokens"], ".0f"),
        "",
    )
    if trl["status"] == "error":
        t.add_row("[red]TRL status[/red]", "", f"[red]{trl['error'][:300]}[/red]", "")
    if ours["status"] == "error":
        t.add_row("[red]ours status[/red]", f"[red]{ours['error'][:300]}[/red]", "", "")
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--warmup-steps", type=int, default=1, help="untimed steps before the one")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--aggregation", default="domain", choices=["token", "sample", "domain"])
    parser.add_argument("--no-coverage", action="store_true", help="skip our coverage monitor")
    parser.add_argument("--order", default="ours,trl,ours,trl")
    parser.add_argument("--worker", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if "trl" in args.order.split(","):
        require_peer("trl", f"{REQUIREMENTS} (TRL only: pip install 'trl==1.16.*')")

    import torch
    from rich.console import Console
    from transformers import AutoConfig

    from longhorizon.models.registry import resolve_model

    vocab = AutoConfig.from_pretrained(resolve_model(STUDENT)).vocab_size
    resolve_model(TEACHER)  # built once here, not inside a timed process
    order = args.order.split(",")
    console = Console(width=120)
    runs = []
    for i, side in enumerate(order):
        console.print(f"[{i + 1}/{len(order)}] {side} ...")
        result = spawn(__file__, side, forwarded(args))
        if result["status"] != "ok":
            console.print(f"  {side} failed: {result['error'][:500]}")
        else:
            step, peak = result["seconds"]["total"], result["rss"]["peak_mib"]
            console.print(f"  step {step:.3f}s, peak RSS {peak:.0f} MiB")
        runs.append({"side": side, "index": i, **result})

    summary = {side: summarise(runs, side, PHASES) for side in ("ours", "trl")}
    trl_run = next((r for r in runs if r["side"] == "trl" and r["status"] == "ok"), None)
    payload = {
        "benchmark": "one on-policy distillation step, ours (SVA) vs TRL DistillationTrainer",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": version("transformers"),
            "trl": version("trl"),
            "accelerate": version("accelerate"),
            "longhorizon": version("longhorizon"),
        },
        "machine": {"cpu_count": os.cpu_count(), "arch": platform.machine(), "device": "cpu"},
        "settings": {
            "student": STUDENT,
            "teacher": TEACHER,
            "vocab_size": vocab,
            "prompts": args.prompts,
            "prompt_texts": prompt_texts(args.prompts),
            "chat_template": "tokenizer's (SmolLM2), add_generation_prompt=True",
            "max_new_tokens": args.max_tokens,
            "temperature": args.temperature,
            "top_k": 0,
            "top_p": 1.0,
            "batch": args.prompts,
            "k": args.k,
            "ours_loss": {
                "kind": "sva",
                "k": args.k,
                "aggregation": args.aggregation,
                "monitor_coverage": not args.no_coverage,
            },
            "trl_loss": "generalised JSD with beta=1 = full-vocabulary reverse KL",
            "optimizer": "torch AdamW, betas (0.9, 0.999), eps 1e-8, weight decay 0, constant lr",
            "lr": args.lr,
            "grad_clip": args.grad_clip,
            "dtype": "float32",
            "bf16": False,
            "gradient_checkpointing": False,
            "torch_threads": args.threads,
            "warmup_steps": args.warmup_steps,
            "timed_steps": 1,
            "order": order,
            "trl_config": trl_run["settings"] if trl_run else trl_settings(args, "<tmp>"),
            "rss": (
                "peak = ru_maxrss after the timed step (covers the warm-up steps); extra = peak "
                "minus VmRSS right after loading student and teacher (libraries imported before)"
            ),
            "phases": (
                "TRL: rollout = _prepare_inputs (prompt tokenisation + generate + padding); "
                "teacher = teacher backbone forward only (TRL projects the teacher's logits inside "
                "its chunked divergence, counted in loss); optimizer = AdamW step only (grad "
                "clipping is in other). Ours: rollout includes the snapshot weight refresh; "
                "teacher = score_in_process top-k (one padded backbone pass, log-softmax, top-k); "
                "loss = optimizer_update minus the AdamW step (build_batch, student forward, "
                "distill_loss, backward, clipping); optimizer = AdamW step only"
            ),
        },
        "runs": runs,
        "summary": summary,
        "ratios": ratios(summary["ours"], summary["trl"]),
    }
    payload["goals"] = goals(payload["ratios"])
    console.print(table(payload))
    write_result("opd_vs_trl", payload)


if __name__ == "__main__":
    main()
