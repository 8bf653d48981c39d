"""`longhorizon eval`: run a model on benchmarks with error bars, score a responses file, or
compare two evaluation directories.

    longhorizon eval --model M --bench ifeval,molbench --seeds 3 --out DIR
    longhorizon eval --bench ifeval --responses responses.jsonl --out DIR
    longhorizon eval --bench ifbench --responses responses.jsonl [--inputs TEST.jsonl] --out DIR
    longhorizon eval compare DIR_A DIR_B [--out FILE.json]   (or --compare DIR_A DIR_B)
    longhorizon eval --model M --bench frontierscience --judge-base-url URL --judge-model J --out D
    longhorizon eval --config eval.yaml [--set seeds=3 ...] [--dry-run]
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from longhorizon.cli.config_options import (
    DRY_RUN,
    OPTIONAL_CONFIG,
    SET,
    config_yaml,
    resolve_config,
)
from longhorizon.cli.summariser import SUMMARISER, SUMMARISER_BACKEND, SUMMARISER_URL
from longhorizon.cli.synth import cli_levels
from longhorizon.core.benchmarks import benchmark_file
from longhorizon.core.files import write_text_atomic
from longhorizon.evaluation.config import EvalConfig

if TYPE_CHECKING:
    from longhorizon.evaluation.options import EvalOptions
    from longhorizon.evaluation.types import BenchResult

console = Console()

# Benches that score a responses file, and their default inputs file in the benchmark folder.
RESPONSE_FILE_INPUTS = {"ifeval": "input_data.jsonl", "ifbench": "IFBench_test.jsonl"}


def evaluate(
    command: list[str] | None = typer.Argument(
        None, help="`compare DIR_A DIR_B`: paired differences of two --out directories"
    ),
    config: Path | None = OPTIONAL_CONFIG,
    overrides: list[str] = SET,
    dry_run: bool = DRY_RUN,
    bench: str | None = typer.Option(
        None,
        help="benchmark(s), comma-separated: ifeval, ifbench, molbench, molbench-ms-1, hipho, "
        "frontierscience, mle-medals, <domain>-heldout",
    ),
    out: Path | None = typer.Option(None, help="output dir"),
    responses: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="score a responses file; no model is run"
    ),
    inputs: Path | None = typer.Option(None, help="benchmark inputs (default: shared data)"),
    model: str | None = typer.Option(None, help="short name, checkpoint dir or hub id"),
    seeds: int | None = typer.Option(None, min=1, help="seeds 0..N-1: 0 greedy, k>0 at T=0.7"),
    backend: str | None = typer.Option(None, help="hf | openai | vllm"),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible /v1 URL (openai)"),
    tokenizer: str | None = typer.Option(None, help="tokenizer for a server's model"),
    limit: int | None = typer.Option(None, min=1, help="first K items of each bench"),
    max_tokens: int | None = typer.Option(
        None, min=1, help="tokens per response (default 1024; held-out: overrides L_resp)"
    ),
    max_turns: int | None = typer.Option(None, min=1, help="held-out: overrides T_max"),
    train_tasks: Path | None = typer.Option(
        None, help="held-out: TaskStore dir whose tasks the held-out items must not overlap"
    ),
    batch_size: int | None = typer.Option(None, min=1, help="hf batch size / requests in flight"),
    level: list[str] = typer.Option(
        [], help="held-out: DOMAIN=JSON level, as given to `longhorizon synth` (repeatable)"
    ),
    compare: tuple[Path, Path] | None = typer.Option(
        None, "--compare", help="two --out directories: paired A - B per bench"
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS",
        help="held-out episodes on Ray workers: `local`, `auto` or HOST:PORT",
    ),
    workers: int | None = typer.Option(None, min=1, help="Ray workers (with --ray)"),
    judge_base_url: str | None = typer.Option(
        None, help="LLM judge (hipho open-ended, frontierscience): OpenAI-compatible /v1 URL"
    ),
    judge_model: str | None = typer.Option(None, help="LLM judge: the served model name"),
    judge_max_tokens: int | None = typer.Option(
        None, min=1, help="LLM judge: tokens per reply (default 2048)"
    ),
    summariser: str | None = SUMMARISER,
    summariser_backend: str | None = SUMMARISER_BACKEND,
    summariser_url: str | None = SUMMARISER_URL,
) -> None:
    """Evaluate a model (--model), score a responses file (--responses), or compare runs.

    Every option is a field of EvalConfig: `--config FILE`, `--set FIELD=VALUE`, `--dry-run`.
    """
    if command:
        if command[0] != "compare" or len(command) != 3:
            raise typer.BadParameter("usage: longhorizon eval compare DIR_A DIR_B")
        print_comparison(Path(command[1]), Path(command[2]), out)
        return
    if compare is not None:
        print_comparison(*compare, out)
        return
    flags: dict[str, Any] = {
        "bench": bench,
        "out": out,
        "responses": responses,
        "inputs": inputs,
        "model": model,
        "seeds": seeds,
        "backend": backend,
        "base_url": base_url,
        "tokenizer": tokenizer,
        "limit": limit,
        "max_tokens": max_tokens,
        "max_turns": max_turns,
        "train_tasks": train_tasks,
        "batch_size": batch_size,
        "ray": ray_address,
        "workers": workers,
        "judge_base_url": judge_base_url,
        "judge_model": judge_model,
        "judge_max_tokens": judge_max_tokens,
        "summariser": summariser,
        "summariser_backend": summariser_backend,
        "summariser_base_url": summariser_url,
    }
    if level:
        flags["levels"] = cli_levels(level)
    given = {k: str(v) if isinstance(v, Path) else v for k, v in flags.items() if v is not None}
    if config is None and ("bench" not in given or "out" not in given) and not overrides:
        raise typer.BadParameter("pass --bench and --out (or --config, or `compare DIR_A DIR_B`)")
    cfg = resolve_config(EvalConfig, config, overrides, given)
    if dry_run:
        from longhorizon.evaluation.runner import get_bench

        try:
            for name in cfg.bench:
                get_bench(name)  # a typo fails the dry run as it would the run
        except KeyError as exc:
            raise typer.BadParameter(str(exc).strip("'\"")) from None
        console.print(config_yaml(cfg), markup=False, highlight=False)
        return
    run_config(cfg)


def run_config(cfg: EvalConfig) -> None:
    """Score a responses file, or run the model on every bench."""
    benches = list(cfg.bench)
    if cfg.responses is not None:
        if len(benches) != 1 or benches[0] not in RESPONSE_FILE_INPUTS:
            raise typer.BadParameter(
                f"unsupported --bench {','.join(benches)!r} for a responses file: "
                + " or ".join(RESPONSE_FILE_INPUTS)
            )
        name = benches[0]
        inputs = cfg.inputs or benchmark_file(name, RESPONSE_FILE_INPUTS[name])
        score_responses_file(name, inputs, cfg.responses, cfg.out)
        return
    if cfg.model is None:
        raise typer.BadParameter("pass --model M to run a model, or --responses FILE")
    run_model(
        cfg.model,
        benches,
        cfg.seeds,
        cfg.out,
        cfg.options(),
        cfg.backend,
        cfg.base_url,
        cfg.tokenizer,
    )


def run_model(
    model: str,
    benches: list[str],
    seeds: int,
    out: Path,
    options: EvalOptions,
    backend: str,
    base_url: str | None,
    tokenizer: str | None,
) -> None:
    from longhorizon.evaluation.runner import bench_names, evaluate_model

    unknown = [b for b in benches if b not in bench_names()]
    if unknown:
        raise typer.BadParameter(
            f"unknown --bench {', '.join(unknown)}; known: {', '.join(bench_names())}"
        )
    results = asyncio.run(
        evaluate_model(
            model,
            benches,
            seeds,
            out,
            options,
            backend=backend,
            base_url=base_url,
            tokenizer=tokenizer,
        )
    )
    print_results(model, results)
    for name in results:
        console.print(f"{name}: {out / name / 'result.json'}")


def print_results(model: str, results: dict[str, BenchResult]) -> None:
    """One row per bench, metric and seed, then the pooled row; tokens/s per seed below."""
    from longhorizon.evaluation.tables import horizon_table, results_table

    console.print(results_table(model, results))
    for name, result in results.items():
        table = horizon_table(f"{model} {name}", {model: result})
        if table is not None:
            console.print(table)
        if result.truncated:
            cut = sum(result.truncated.values())
            n = sum(result.n_items.values()) + sum(
                sum(u.values()) for u in result.unscored.values()
            )
            console.print(f"{name}: {cut} of {n} episodes truncated at a budget")
        for seed, run in sorted(result.info.get("runs", {}).items()):
            rate = run.get("tokens_per_s")
            console.print(
                f"{name} seed {seed}: ran {run['ran']}, reused {run['reused']}, "
                f"{run['completion_tokens']} tokens in {run['wall_s']:.1f} s"
                + (f" ({rate:.1f} tokens/s)" if rate else "")
            )
        excluded = result.info.get("excluded")
        if excluded:
            left_out = ", ".join(f"{n} {reason}" for reason, n in excluded.items())
            console.print(
                f"{name}: {result.info['scorable']} of {result.info['questions']} questions "
                f"scored; left out: {left_out}"
            )
        print_unscored(name, result)
        dropped = result.info.get("audit", {}).get("dropped_count")
        if dropped is not None:
            audit = result.info["audit"]
            console.print(
                f"{name} audit: kept {audit['kept']}/{audit['generated']}, dropped {dropped} "
                f"({audit['rule']}); {audit['shared_ngram_items']} share a 13-gram with "
                f"{audit['train_tasks']} training tasks"
            )


def print_unscored(name: str, result: BenchResult) -> None:
    """Answered items without a score per seed, by why, and the judge's state, if it has one."""
    for seed, reasons in sorted(result.unscored.items()):
        if reasons:
            why = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
            total = result.n_items.get(seed, 0) + sum(reasons.values())
            console.print(
                f"{name} seed {seed}: {sum(reasons.values())} of {total} items unscored "
                f"(in no metric): {why}"
            )
    judge = result.info.get("judge")
    if isinstance(judge, str):  # the no-judge message
        console.print(f"{name}: {judge}", markup=False)
    elif isinstance(judge, dict):
        console.print(f"{name}: judge {judge['model']} at {judge['base_url']}", markup=False)


def print_comparison(dir_a: Path, dir_b: Path, save: Path | None = None) -> None:
    """The paired A - B table; with `save`, the same numbers as JSON (what results/ keeps)."""
    from longhorizon.evaluation.compare import compare_dirs, comparison_record
    from longhorizon.evaluation.tables import comparison_table

    for folder in (dir_a, dir_b):
        if not folder.is_dir():
            raise typer.BadParameter(f"{folder} is not an evaluation directory (no such folder)")
    comparisons = compare_dirs(dir_a, dir_b)
    if not comparisons:
        raise typer.BadParameter(f"{dir_a} and {dir_b} share no bench with common seeds")
    title = f"A - B: A = {dir_a}, B = {dir_b} (paired, same items and seeds)"
    console.print(comparison_table(comparisons, title))
    console.print("* the 95% interval excludes 0")
    if save is not None:
        record = comparison_record(dir_a, dir_b, comparisons)
        write_text_atomic(save, json.dumps(record, indent=2) + "\n")
        console.print(f"comparison: {save}")


def score_responses_file(bench: str, inputs: Path, responses: Path, out: Path) -> None:
    """Score an IFEval or IFBench responses file: items.jsonl, summary.json and a table."""
    from longhorizon.verifiers.ifbench import scorer as ifbench_scorer
    from longhorizon.verifiers.ifeval import scorer as ifeval_scorer

    scorer = ifbench_scorer if bench == "ifbench" else ifeval_scorer
    try:
        report = scorer.score_responses(inputs, responses)
    except (KeyError, ValueError, OSError) as exc:  # a missing prompt, a bad line, no file
        raise typer.BadParameter(f"{responses}: {str(exc).strip(chr(39))}") from None
    out.mkdir(parents=True, exist_ok=True)
    ifeval_scorer.write_items_jsonl(report, out / "items.jsonl")
    summary = {
        name: {"correct": a.correct, "total": a.total, "accuracy": a.value}
        for name, a in report.summary().items()
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    title = "IFBench (headline: prompt_level_loose)" if bench == "ifbench" else "IFEval"
    table = Table(title=f"{title}: {responses.name}")
    for column in ("metric", "accuracy", "correct / total"):
        table.add_column(column)
    for name, acc in report.summary().items():
        table.add_row(name, f"{acc.value:.4f}", f"{acc.correct}/{acc.total}")
    console.print(table)
    console.print(f"items: {out / 'items.jsonl'}  summary: {out / 'summary.json'}")
