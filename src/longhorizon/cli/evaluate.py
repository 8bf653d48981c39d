"""`longhorizon eval`: run a model on benchmarks with error bars, score a responses file, or
compare two evaluation directories.

    longhorizon eval --model M --bench ifeval,molbench --seeds 3 --out DIR
    longhorizon eval --bench ifeval --responses responses.jsonl --out DIR
    longhorizon eval compare DIR_A DIR_B          (or --compare DIR_A DIR_B)
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from longhorizon.core.benchmarks import benchmark_file

if TYPE_CHECKING:
    from longhorizon.evaluation.options import EvalOptions
    from longhorizon.evaluation.types import BenchResult

console = Console()


def evaluate(
    command: list[str] | None = typer.Argument(
        None, help="`compare DIR_A DIR_B`: paired differences of two --out directories"
    ),
    bench: str | None = typer.Option(
        None,
        help="benchmark(s), comma-separated: ifeval, molbench, search-heldout, instruction-heldout",
    ),
    out: Path | None = typer.Option(None, help="output dir"),
    responses: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="score a responses file; no model is run"
    ),
    inputs: Path | None = typer.Option(None, help="benchmark inputs (default: shared data)"),
    model: str | None = typer.Option(None, help="short name, checkpoint dir or hub id"),
    seeds: int = typer.Option(1, min=1, help="seeds 0..N-1: 0 greedy, k>0 sampled at T=0.7"),
    backend: str = typer.Option("hf", help="hf | openai | vllm"),
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
    batch_size: int = typer.Option(8, min=1, help="hf batch size / requests in flight"),
    instruction_level: str | None = typer.Option(
        None, help="instruction-heldout: JSON level, as given to `longhorizon synth`"
    ),
    compare: tuple[Path, Path] | None = typer.Option(
        None, "--compare", help="two --out directories: paired A - B per bench"
    ),
) -> None:
    """Evaluate a model (--model), score a responses file (--responses), or compare runs."""
    if command:
        if command[0] != "compare" or len(command) != 3:
            raise typer.BadParameter("usage: longhorizon eval compare DIR_A DIR_B")
        print_comparison(Path(command[1]), Path(command[2]))
        return
    if compare is not None:
        print_comparison(*compare)
        return
    if bench is None or out is None:
        raise typer.BadParameter("pass --bench and --out (or `compare DIR_A DIR_B`)")
    benches = [b.strip() for b in bench.split(",") if b.strip()]
    if responses is not None:
        if benches != ["ifeval"]:
            raise typer.BadParameter(f"unsupported --bench {bench!r} for a responses file: ifeval")
        score_ifeval_file(inputs or benchmark_file("ifeval", "input_data.jsonl"), responses, out)
        return
    if model is None:
        raise typer.BadParameter("pass --model M to run a model, or --responses FILE")
    if backend not in ("hf", "openai", "vllm"):
        raise typer.BadParameter(f"--backend {backend!r}: hf, openai or vllm")
    from longhorizon.cli.synth import cli_level
    from longhorizon.evaluation.options import EvalOptions

    options = EvalOptions(
        max_tokens=max_tokens,
        batch_size=batch_size,
        limit=limit,
        train_tasks=train_tasks,
        max_turns=max_turns,
        instruction_level=cli_level(instruction_level),
    )
    run_model(model, benches, seeds, out, options, backend, base_url, tokenizer)


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
    from longhorizon.evaluation.runner import BENCHES, evaluate_model

    unknown = [b for b in benches if b not in BENCHES]
    if unknown:
        raise typer.BadParameter(
            f"unknown --bench {', '.join(unknown)}; known: {', '.join(BENCHES)}"
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
    table = Table(title=f"{model}: mean [95% CI]")
    for column in ("bench", "metric", "seed", "mean", "95% CI", "n"):
        table.add_column(column)
    for name, result in results.items():
        for metric in result.metrics.values():
            rows = [(str(s), e) for s, e in sorted(metric.per_seed.items())]
            rows.append(("pooled", metric.pooled))  # with one seed, the same as that seed
            for seed, est in rows:
                ci = f"[{est.low:.3f}, {est.high:.3f}]"
                table.add_row(name, metric.name, seed, f"{est.mean:.3f}", ci, str(est.n))
    console.print(table)
    for name, result in results.items():
        for seed, run in sorted(result.info.get("runs", {}).items()):
            rate = run.get("tokens_per_s")
            console.print(
                f"{name} seed {seed}: ran {run['ran']}, reused {run['reused']}, "
                f"{run['completion_tokens']} tokens in {run['wall_s']:.1f} s"
                + (f" ({rate:.1f} tokens/s)" if rate else "")
            )
        dropped = result.info.get("audit", {}).get("dropped_count")
        if dropped is not None:
            audit = result.info["audit"]
            console.print(
                f"{name} audit: kept {audit['kept']}/{audit['generated']}, dropped {dropped} "
                f"({audit['rule']}); {audit['shared_ngram_items']} share a 13-gram with "
                f"{audit['train_tasks']} training tasks"
            )


def print_comparison(dir_a: Path, dir_b: Path) -> None:
    from longhorizon.evaluation.compare import compare_dirs

    comparisons = compare_dirs(dir_a, dir_b)
    if not comparisons:
        raise typer.BadParameter(f"{dir_a} and {dir_b} share no bench with common seeds")
    table = Table(title=f"A - B: A = {dir_a}, B = {dir_b} (paired, same items and seeds)")
    for column in ("bench", "metric", "seeds", "A - B", "95% CI", "items"):
        table.add_column(column)
    for c in comparisons:
        d = c.difference
        mark = " *" if c.significant else ""
        seeds = ",".join(map(str, c.seeds))
        ci = f"[{d.low:+.3f}, {d.high:+.3f}]"
        table.add_row(c.bench, c.metric, seeds, f"{d.mean:+.3f}{mark}", ci, str(d.n))
    console.print(table)
    console.print("* the 95% interval excludes 0")


def score_ifeval_file(inputs: Path, responses: Path, out: Path) -> None:
    import json

    from longhorizon.verifiers.ifeval.scorer import score_responses, write_items_jsonl

    report = score_responses(inputs, responses)
    out.mkdir(parents=True, exist_ok=True)
    write_items_jsonl(report, out / "items.jsonl")
    summary = {
        name: {"correct": a.correct, "total": a.total, "accuracy": a.value}
        for name, a in report.summary().items()
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = Table(title=f"IFEval: {responses.name}")
    for column in ("metric", "accuracy", "correct / total"):
        table.add_column(column)
    for name, acc in report.summary().items():
        table.add_row(name, f"{acc.value:.4f}", f"{acc.correct}/{acc.total}")
    console.print(table)
    console.print(f"items: {out / 'items.jsonl'}  summary: {out / 'summary.json'}")
