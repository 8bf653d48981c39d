"""One GRPO step: ours (`rl.GRPOTrainer.train_step`) vs TRL's `GRPOTrainer`.

Same policy (tiny-llama, float32, no gradient checkpointing), tokenizer, single-turn chat
prompts, G rollouts per prompt, completion length, sampling (temperature 1, no top-k/top-p),
rule reward, objective and AdamW settings on both sides, on this machine's CPU:

- objective: token-level clipped surrogate with asymmetric clip [0.2, 0.28], k3 KL to the frozen
  starting policy (beta 0.001), entropy bonus 1e-4, group-normalised advantages (reward minus the
  group mean, over the group std), token mean over the whole batch (ours `aggregation: token`,
  TRL `loss_type: dapo`), one update per generation (pi_old = the sampling policy), truncated
  completions kept and scored (ours `overlong: keep`, TRL `mask_truncated_completions: False`).
- reward (both sides compute it from the completion ids): the share of the first
  `--reward-tokens` generated tokens whose id is even (ours: one verdict per position, reward
  `fraction`), so that groups almost never tie.
- ours: `GRPOTrainer.setup()` then `train_step` as `longhorizon rl` runs it: the snapshot refresh,
  G episodes per prompt through the harness (EpisodeRunner on the in-process HFBackend), the
  verifier, advantages, then `rl.step.optimizer_update` in one micro-batch of all P x G
  sequences. Dynamic sampling off (TRL has none); each prompt is its own domain so that the
  step's prompt draw (one per domain) takes every prompt once, as TRL's sampler does.
- TRL: `trl.GRPOTrainer` (transformers generation, no vLLM), one generation batch of P x G per
  optimizer step, `trainer.train()`.

Each side runs in its own fresh subprocess, in the order ours, TRL, ours, TRL; each subprocess
runs `--warmup-steps` steps and times the next one, phase by phase. Peak RSS is ru_maxrss after
that step; "extra" subtracts the RSS once the trainer was built (its models loaded). Prints a
table and writes bench/results/grpo_vs_trl.json. TRL is optional (requirements-bench.txt): if it
cannot be imported or run, its rows say so, with the exact error.

    python bench/grpo_vs_trl.py [--prompts 4] [--group 4] [--max-tokens 64] [--warmup-steps 1]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
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

POLICY = "tiny-llama"
TOPICS = ["rivers", "the moon", "bread", "chess", "volcanoes", "music", "bees", "glass"]
PHASES = ("rollout", "reference", "loss_fwd_bwd", "optimizer", "other")
PHASE_LABELS = {
    "rollout": "rollout (generation, reward, adv.)",
    "reference": "reference forward (KL)",
    "loss_fwd_bwd": "loss forward + backward",
    "optimizer": "optimizer step",
    "other": "other (batching, bookkeeping)",
}
SEED = 0
INSTALL_PEER = "the peer is optional: pip install -r requirements-bench.txt (TRL 1.16)"


def prompt_texts(n: int) -> list[str]:
    return [f"Write a long essay about {TOPICS[i % len(TOPICS)]}." for i in range(n)]


def even_share(completion_ids: list[int], positions: int) -> float:
    """The rule reward: the share of the first `positions` generated ids that are even."""
    return sum(1 for t in completion_ids[:positions] if t % 2 == 0) / positions


# ---- our side --------------------------------------------------------------------------------
def rl_config(args: argparse.Namespace, root: Path) -> Any:
    """The RLConfig of our side: one task store of single-turn prompts, one domain per prompt."""
    from longhorizon.core import Budgets, Protocol, Task, TaskStore
    from longhorizon.rl import RLConfig

    budgets = Budgets(max_turns=1, max_response_tokens=args.max_tokens, max_context_tokens=8192)
    with TaskStore(root / "tasks") as store:
        for i, text in enumerate(prompt_texts(args.prompts)):
            protocol = Protocol(tools=(), budgets=budgets)
            store.add(
                Task(id=f"p{i}", domain=f"p{i}", instruction=text, answer="", protocol=protocol)
            )
    batch = args.prompts * args.group
    return RLConfig.model_validate(
        {
            "model": POLICY,
            "tasks": [str(root / "tasks")],
            "output_dir": str(root / "run"),
            "steps": args.warmup_steps + 1,
            "lr": args.lr,
            "schedule": "constant",
            "max_grad_norm": args.grad_clip,
            "micro_batch_size": batch,  # one forward of all sequences, as TRL's
            "seed": SEED,
            "resume": False,
            "tensorboard": False,
            "num_threads": args.threads,
            "rollout": {
                "prompts_per_step": args.prompts,
                "group_size": args.group,
                "temperature": 1.0,
                "concurrency": batch,  # one generation batch of all rollouts, as TRL's
                "dynamic_sampling": False,
                "max_tries": 1,
                "max_tokens": args.max_tokens,
            },
            "objective": {
                "clip_low": 0.2,
                "clip_high": 0.28,
                "kl_coef": args.beta,
                "entropy_coef": args.entropy_coef,
                "aggregation": "token",
                "overlong": "keep",
                "reward": "fraction",
                "advantage": "grpo",
            },
        }
    )


def parity_verify(positions: int) -> Callable[..., list[Any]]:
    """Our verifier of the rule reward: one verdict per position (reward `fraction`)."""
    from longhorizon.core import Task, Trajectory, Verdict

    def verify(task: Task, traj: Trajectory) -> list[Verdict]:
        ids = traj.calls[0].completion_ids if traj.calls else []
        return [
            Verdict(verifier=f"even{i}", passed=i < len(ids) and ids[i] % 2 == 0)
            for i in range(positions)
        ]

    return verify


def _timed_attr(obj: Any, name: str, phase: str, times: dict[str, float]) -> None:
    """Wrap `obj.name` (instance level, the code unchanged) to add its seconds to `phase`."""
    fn = getattr(obj, name)

    def wrapper(*a: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            times[phase] = times.get(phase, 0.0) + time.perf_counter() - start

    setattr(obj, name, wrapper)


def _count_rollouts(backend: Any, times: dict[str, float]) -> set[tuple[int, ...]]:
    """Wrap `backend.generate_sync` to count generated tokens and collect the prompts."""
    fn, seen = backend.generate_sync, set()

    def counted(prompts: list[list[int]], params: Any) -> Any:
        out = fn(prompts, params)
        seen.update(tuple(p) for p in prompts)
        tokens = times.get("completion_tokens", 0.0) + sum(len(c.completion_ids) for c in out)
        times["completion_tokens"] = tokens
        return out

    backend.generate_sync = counted
    return seen


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    from rich.console import Console

    from longhorizon.rl import GRPOTrainer

    with tempfile.TemporaryDirectory(prefix="grpo_vs_trl_") as tmp:
        cfg = rl_config(args, Path(tmp))
        quiet = Console(file=io.StringIO())
        trainer = GRPOTrainer(cfg, parity_verify(args.reward_tokens), quiet)
        try:
            trainer.setup()
            rss_models, peak_models = rss_now_mib(), rss_peak_mib()
            return _ours_steps(trainer, args, rss_models, peak_models)
        finally:
            trainer.cleanup()


def _ours_steps(
    trainer: Any, args: argparse.Namespace, rss_models: float, peak_models: float
) -> dict[str, Any]:
    times: dict[str, float] = {}
    _timed_attr(trainer.optimizer, "step", "optimizer", times)
    _timed_attr(trainer.snapshot, "generate_sync", "generate", times)
    seen = _count_rollouts(trainer.snapshot, times)
    if trainer.reference is not None:
        _timed_attr(trainer.reference, "forward", "reference", times)
    texts = prompt_texts(args.prompts)
    prompts = chat_prompt_ids(trainer.tokenizer, texts)

    async def steps() -> tuple[dict[str, Any], float, dict[str, float]]:
        try:
            for i in range(args.warmup_steps):
                await trainer.train_step(i)
            times.clear()
            seen.clear()
            start = time.perf_counter()
            record = await trainer.train_step(args.warmup_steps)
            return record, time.perf_counter() - start, dict(times)
        finally:
            await trainer.snapshot.aclose()

    record, total, step_times = asyncio.run(steps())
    peak = rss_peak_mib()
    phase = record["phase_seconds"]
    train = phase["train"] - step_times.get("reference", 0.0) - step_times.get("optimizer", 0.0)
    measured = {
        "rollout": phase["rollout"],
        "reference": step_times.get("reference", 0.0),
        "loss_fwd_bwd": train,
        "optimizer": step_times.get("optimizer", 0.0),
    }
    return {
        "status": "ok",
        "seconds": phases_record(measured, total, PHASES),
        "generate_only_s": step_times.get("generate", 0.0),
        "prompts_identical_to_chat_template": seen == {tuple(p) for p in prompts},
        "completion_tokens": int(step_times.get("completion_tokens", 0)),
        "reward_mean": record["reward_mean"],
        "loss": record["loss"],
        "groups": record["groups"],
        "rss": rss_record(rss_models, peak_models, peak),
    }


# ---- TRL's side ------------------------------------------------------------------------------
def trl_settings(args: argparse.Namespace, output_dir: str) -> dict[str, Any]:
    """The GRPOConfig we pass (everything that matters set explicitly)."""
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": args.prompts * args.group,
        "gradient_accumulation_steps": 1,
        "num_generations": args.group,
        "num_iterations": 1,
        "max_completion_length": args.max_tokens,
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
        "use_vllm": False,
        "beta": args.beta,
        "epsilon": 0.2,
        "epsilon_high": 0.28,
        "entropy_coef": args.entropy_coef,
        "loss_type": "dapo",
        "scale_rewards": "group",
        "mask_truncated_completions": False,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
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
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from trl import GRPOConfig, GRPOTrainer

        from longhorizon.models.registry import resolve_model
    except Exception as exc:  # the package is optional: report, do not fake
        return failure("import", exc, INSTALL_PEER)

    torch.manual_seed(SEED)
    path = resolve_model(POLICY)
    tokenizer = AutoTokenizer.from_pretrained(path)
    policy = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer.padding_side = "left"
    texts = prompt_texts(args.prompts)
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": t}] for t in texts]})
    clock = PhaseClock()

    def reward(completion_ids: list[list[int]], **kw: Any) -> list[float]:
        clock.add("completion_tokens", float(sum(len(c) for c in completion_ids)))
        return [even_share(list(c), args.reward_tokens) for c in completion_ids]

    with tempfile.TemporaryDirectory(prefix="grpo_vs_trl_") as out_dir:
        settings = trl_settings(args, out_dir)
        try:
            trainer = GRPOTrainer(
                model=policy,
                reward_funcs=reward,
                args=GRPOConfig(**settings),
                train_dataset=dataset,
                processing_class=tokenizer,
                callbacks=[clock.callback()],
            )
            rss_models, peak_models = rss_now_mib(), rss_peak_mib()  # policy and reference
            _trl_timers(trainer, clock)
            trainer.train()
        except Exception as exc:
            return failure("run", exc)
    step = clock.steps[args.warmup_steps]
    times = {
        "rollout": step["prepare_inputs"] - step.get("reference", 0.0),
        "reference": step.get("reference", 0.0),
        "loss_fwd_bwd": step["training_step"] - step["prepare_inputs"],
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


def _trl_timers(trainer: Any, clock: PhaseClock) -> None:
    """Instance-level timing wrappers around TRL's own methods (its code is unchanged)."""
    reference = trainer.ref_model
    trainer._prepare_inputs = clock.timed("prepare_inputs", trainer._prepare_inputs)
    trainer._generate_single_turn = clock.timed("generate", trainer._generate_single_turn)
    trainer._get_per_token_logps_and_entropies = clock.timed(
        "reference",
        trainer._get_per_token_logps_and_entropies,
        when=lambda model, *a, **kw: reference is not None and model is reference,
    )
    # Gradient clipping runs between backward and on_pre_optimizer_step: not timed separately,
    # so "optimizer" is the AdamW step alone and clipping lands in "other".
    trainer.training_step = clock.timed("training_step", trainer.training_step)


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
    return [
        f"--prompts={args.prompts}",
        f"--group={args.group}",
        f"--max-tokens={args.max_tokens}",
        f"--reward-tokens={args.reward_tokens}",
        f"--beta={args.beta}",
        f"--entropy-coef={args.entropy_coef}",
        f"--lr={args.lr}",
        f"--grad-clip={args.grad_clip}",
        f"--warmup-steps={args.warmup_steps}",
        f"--threads={args.threads}",
    ]


def table(payload: dict[str, Any]) -> Any:
    from rich.table import Table

    s, summary = payload["settings"], payload["summary"]
    runs = [r for r in payload["runs"] if r["status"] == "ok"]
    ours, trl, ratio = summary["ours"], summary["trl"], payload["ratios"]
    title = (
        f"one GRPO step, {s['prompts']} prompts x G={s['group']} x {s['max_new_tokens']} new "
        f"tokens, {POLICY}, float32, {s['torch_threads']} threads (mean of "
        f"{s['order'].count('ours')}+{s['order'].count('trl')} fresh processes, order "
        f"{'/'.join(s['order'])})"
    )
    t = Table(title=title)
    for column in ("metric", "ours", "TRL GRPOTrainer", "ratio"):
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
    t.add_row(
        "step total per run (s)",
        *[
            " / ".join(f"{r['seconds']['total']:.2f}" for r in runs if r["side"] == side)
            for side in ("ours", "trl")
        ],
        "",
    )
    _memory_rows(t, ours, trl, ratio, cell)
    if trl["status"] == "error":
        t.add_row("[red]TRL status[/red]", "", f"[red]{trl['error'][:300]}[/red]", "")
    if ours["status"] == "error":
        t.add_row("[red]ours status[/red]", f"[red]{ours['error'][:300]}[/red]", "", "")
    return t


def _memory_rows(t: Any, ours: Any, trl: Any, ratio: dict[str, Any], cell: Any) -> None:
    peak, extra = ratio["peak_rss_ours_over_trl"], ratio.get("extra_rss_ours_over_trl")
    t.add_row(
        "peak RSS (MiB)",
        cell(ours, lambda x: x["rss"]["peak_mib"], ".0f"),
        cell(trl, lambda x: x["rss"]["peak_mib"], ".0f"),
        f"ours/TRL {peak:.2f} (goal <= 1)" if peak else "n/a",
    )
    t.add_row(
        "extra RSS over trainer built (MiB)",
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group", type=int, default=4, help="rollouts per prompt (G)")
    parser.add_argument("--max-tokens", type=int, default=64, help="max completion length")
    parser.add_argument("--reward-tokens", type=int, default=8, help="positions the reward reads")
    parser.add_argument("--beta", type=float, default=0.001, help="KL coefficient")
    parser.add_argument("--entropy-coef", type=float, default=1e-4)
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--warmup-steps", type=int, default=1, help="untimed steps before the one")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--order", default="ours,trl,ours,trl")
    parser.add_argument("--worker", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    return parser.parse_args()


def settings(args: argparse.Namespace, order: list[str], trl_run: Any) -> dict[str, Any]:
    from transformers import AutoConfig

    from longhorizon.models.registry import resolve_model

    return {
        "policy": POLICY,
        "vocab_size": AutoConfig.from_pretrained(resolve_model(POLICY)).vocab_size,
        "prompts": args.prompts,
        "group": args.group,
        "prompt_texts": prompt_texts(args.prompts),
        "chat_template": "tokenizer's (SmolLM2), add_generation_prompt=True",
        "max_new_tokens": args.max_tokens,
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "reward": f"share of the first {args.reward_tokens} completion ids that are even",
        "objective": {
            "clip": [0.2, 0.28],
            "kl": f"k3 to the frozen starting policy, beta {args.beta}",
            "entropy_coef": args.entropy_coef,
            "aggregation": "token mean over the batch (ours token, TRL dapo)",
            "advantages": "(r - group mean) / group std",
            "truncated": "kept and scored (ours overlong keep, TRL mask_truncated False)",
        },
        "optimizer": "torch AdamW, betas (0.9, 0.999), eps 1e-8, weight decay 0, constant lr",
        "lr": args.lr,
        "grad_clip": args.grad_clip,
        "dtype": "float32",
        "gradient_checkpointing": False,
        "torch_threads": args.threads,
        "warmup_steps": args.warmup_steps,
        "timed_steps": 1,
        "order": order,
        "trl_config": trl_run["settings"] if trl_run else trl_settings(args, "<tmp>"),
        "rss": (
            "peak = ru_maxrss after the timed step (covers the warm-up steps); extra = peak minus "
            "VmRSS once the trainer was built (ours: setup(), policy + reference + rollout "
            "snapshot; TRL: GRPOTrainer(...), policy + reference)"
        ),
        "phases": (
            "rollout: ours = train_step's rollout phase (snapshot weight refresh, harness "
            "episodes on the in-process HFBackend, verifier, advantages, samples); TRL = "
            "_prepare_inputs minus the reference forward (tokenisation, generate, reward, "
            "advantages, padding). reference: ours = the reference model's forward; TRL = its "
            "_get_per_token_logps_and_entropies on the reference. loss = the update minus "
            "reference and AdamW (ours: build_batch, policy forward, objective, backward, "
            "clipping; TRL: training_step minus _prepare_inputs). optimizer = AdamW step only"
        ),
    }


def pair_ratios(runs: list[dict[str, Any]]) -> list[float | None]:
    """TRL/ours step time of each consecutive (ours, TRL) pair: the spread under shared load."""
    pairs = zip(runs[::2], runs[1::2], strict=False)
    return [
        b["seconds"]["total"] / a["seconds"]["total"]
        if (a["side"], b["side"]) == ("ours", "trl") and a["status"] == b["status"] == "ok"
        else None
        for a, b in pairs
    ]


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    order = args.order.split(",")
    if "trl" in order:
        require_peer("trl", f"{REQUIREMENTS} (TRL only: pip install 'trl==1.16.*')")

    import torch
    from rich.console import Console

    from longhorizon.models.registry import resolve_model

    resolve_model(POLICY)  # built once here, not inside a timed process
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
        "benchmark": "one GRPO step, ours (rl.GRPOTrainer) vs TRL GRPOTrainer",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": version("transformers"),
            "trl": version("trl"),
            "accelerate": version("accelerate"),
            "longhorizon": version("longhorizon"),
        },
        "machine": {"cpu_count": os.cpu_count(), "arch": platform.machine(), "device": "cpu"},
        "settings": settings(args, order, trl_run),
        "runs": runs,
        "summary": summary,
        "ratios": ratios(summary["ours"], summary["trl"]),
    }
    payload["ratios"]["time_trl_over_ours_per_pair"] = pair_ratios(runs)  # the cores are shared
    payload["goals"] = goals(payload["ratios"])
    console.print(table(payload))
    write_result("grpo_vs_trl", payload)


if __name__ == "__main__":
    main()
