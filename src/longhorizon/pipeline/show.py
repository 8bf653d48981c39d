"""`longhorizon run --dry-run`: resolve every stage's config and print the plan."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from longhorizon.domains import registry
from longhorizon.pipeline.recipe import Recipe, token_warnings
from longhorizon.pipeline.stages import plan
from longhorizon.serving.summariser import SummariserConfig

console = Console()


_TRACES = {"without": "no-tool traces", "with": "tool traces", "any": "all traces"}


def _own(budgets: dict[str, int]) -> str:
    """Per-domain budgets as ` (science 5, search 11)`; empty when none."""
    return f" ({', '.join(f'{d} {n}' for d, n in sorted(budgets.items()))})" if budgets else ""


def print_plan(recipe: Recipe) -> None:
    """Build (and so validate) every stage config without loading a model or touching data."""
    p = plan(recipe, recipe.student.name())
    table = Table(title=f"plan: {recipe.name} -> {recipe.out}")
    table.add_column("stage")
    table.add_column("what runs")
    for domain, cfg in p.synth.items():
        solver = recipe.synth.solver or "scripted expert"
        level = ", ".join(f"{k}={v}" for k, v in p.levels[domain].model_dump().items())
        table.add_row(
            f"synth/{domain}",
            f"{cfg.n} accepted tasks at {level}; solver {solver} -> {cfg.out}",
        )
    sft = p.sft
    table.add_row(
        "sft",
        f"{sft.model}: lr {sft.lr:g}, warmup {sft.warmup_ratio:g}, {sft.epochs} epoch(s), "
        f"batch {sft.batch_size}, max_len {sft.max_len}, {sft.parallel} -> {sft.final_path}",
    )
    for domain, teach in p.teachers.items():
        grpo = p.teacher_grpo.get(domain)
        sft_what = (
            "sft"
            if len(teach.stages) == 1
            else " then ".join(f"sft on {_TRACES[s.data.tool_use]}" for s in teach.stages)
        )
        if grpo is None:
            what = f"{sft_what} from {teach.init}: lr {teach.sft.lr:g} -> {teach.teacher_dir()}"
        else:
            r, o = grpo.rollout, grpo.objective
            what = (
                f"{sft_what} from {teach.init}: lr {teach.sft.lr:g} -> {grpo.model}; then grpo "
                f"{grpo.steps} steps x {r.prompts_per_step} prompts x {r.group_size} rollouts, "
                f"lr {grpo.lr:g}, reward {o.reward}, advantage {o.advantage}, "
                f"kl {o.kl_coef:g}, rollouts on {r.backend}, {grpo.parallel} -> {grpo.final_path}"
            )
        table.add_row(f"teacher/{domain}", what)
    d = p.distill
    teachers = ", ".join(f"{t.domain}: {t.backend} {t.base_url or t.model}" for t in d.teachers)
    weights = "".join(f", {dom} x{w:g}" for dom, w in sorted(d.domain_loss_weights.items()))
    if d.routing == "soft":
        teachers += "; soft routing " + "; ".join(
            f"{dom} <- "
            + " + ".join(f"{w:g} {t}" for t, w in (d.teacher_mixture(dom) or {}).items())
            for dom in recipe.domains
        )
    table.add_row(
        "distill",
        f"{d.loss.kind} k={d.loss.k} {d.loss.aggregation}-mean{weights}, {d.steps} steps x "
        f"{d.minibatches} updates, lr {d.lr:g}, {d.rollout.prompts_per_step} prompts/step at "
        f"T={d.rollout.temperature:g} on {d.rollout.backend}, {d.parallel}; teachers {teachers}",
    )
    needs = ", ".join(f"{n} {registry.get(n).required_turns(lv)}" for n, lv in p.levels.items())
    rollout_turns = d.rollout.max_turns or "task T_max"
    table.add_row(
        "eval",
        f"{', '.join(recipe.benches())} x {recipe.eval.seeds} seed(s), "
        f"models {', '.join(p.models())}; max_turns {recipe.eval.max_turns or 'task T_max'}"
        f"{_own(recipe.eval.domain_max_turns)} "
        f"(OPD rollouts {rollout_turns}; tasks need: {needs})"
        f"{_summariser(recipe.eval.summariser)}",
    )
    table.add_row("report", f"{recipe.out / 'report'}")
    if recipe.launch.nproc_per_node > 1:
        n = recipe.launch.nproc_per_node
        table.add_row("launch", f"sft, teachers and distill under torchrun, {n} processes")
    console.print(table)
    for warning in token_warnings(recipe):
        console.print(f"[yellow]budget: {warning}[/yellow]")
    console.print("[green]recipe valid[/green]")


def _summariser(config: SummariserConfig | None) -> str:
    if config is None:
        return ""
    where = f" at {config.base_url}" if config.base_url else ""
    return f"; visit summariser {config.model} ({config.backend}{where})"
