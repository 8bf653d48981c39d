"""The report's sections as document blocks: stages, results, synthesis, contamination,
training, and the recipe. Each section says plainly when its part of the run is missing."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from longhorizon.report.data import DistillStep, Record, RunData, SynthDomain, TeacherStage
from longhorizon.report.doc import Block, Bullets, Code, Heading, Image, Para, Table, ViewerLinks
from longhorizon.report.horizon import horizon_section, truncation_section
from longhorizon.report.plots import PLOTS
from longhorizon.report.results import ResultsTable, table_cells

MISSING = "missing"


def build_blocks(
    run: RunData, table: ResultsTable, plots: dict[str, Path], plots_rel: str
) -> list[Block]:
    """The whole report; `plots_rel` is the plots folder relative to the Markdown file."""

    def figure(name: str) -> list[Block]:
        if name not in plots:
            return []
        return [Image(plots[name], f"{plots_rel}/{plots[name].name}", PLOTS[name])]

    return [
        Heading(f"Run report: {run.run_dir.name}", 1),
        Para(f"Run directory: {run.run_dir}"),
        viewer_links(run),
        *missing_section(run),
        *stages_section(run),
        *results_section(table),
        *figure("scores"),
        *horizon_section(run),
        *figure("horizon"),
        *truncation_section(run),
        *synthesis_section(run),
        *figure("synth_lengths"),
        *figure("tool_usage"),
        *contamination_section(run),
        *training_section(run),
        *(b for name in ("sft_loss", "teacher_loss", "teacher_rl") for b in figure(name)),
        *(b for name in ("opd_loss_kl", "opd_coverage", "opd_rollouts") for b in figure(name)),
        *recipe_section(run),
    ]


def viewer_links(run: RunData) -> ViewerLinks:
    """Where `longhorizon view` shows this run's parts (URLs on the viewer, relative to it)."""
    links = [("overview", "/"), ("all trajectories", "/trajectories")]
    links += [
        (f"{d} tasks and KAG provenance", f"/tasks?{urlencode({'domain': d})}")
        for d in run.synth_domains()
    ]
    if run.distill:
        links.append(("OPD rollouts and per-token KL", "/trajectories?stage=distill"))
    labels = run.eval_labels()
    if "sft" in labels and "distilled" in labels:
        benches = sorted(set((run.evals or {})["sft"]) & set((run.evals or {})["distilled"]))
        for bench in benches:
            query = urlencode({"bench": bench, "a": "sft", "b": "distilled"})
            links.append((f"{bench}: SFT vs distilled, item by item", f"/compare?{query}"))
    return ViewerLinks(links)


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.{digits}f}"


# ---- overview ----------------------------------------------------------------------------
def missing_section(run: RunData) -> list[Block]:
    if not run.notes:
        return [Heading("Missing parts"), Para("Nothing is missing: every part was found.")]
    return [Heading("Missing parts"), Bullets(list(run.notes))]


def stages_section(run: RunData) -> list[Block]:
    head: list[Block] = [Heading("Pipeline stages")]
    if run.stages is None:
        return [*head, Para("No stage log (stages.json is missing).")]
    rows = [[s.name, "done" if s.done else "not finished", _num(s.seconds, 1)] for s in run.stages]
    return [*head, Table(["stage", "status", "seconds"], rows)]


def results_section(table: ResultsTable) -> list[Block]:
    head: list[Block] = [Heading("Results")]
    if not table.rows:
        return [*head, Para("No evaluation results: the eval stage is missing.")]
    header, rows = table_cells(table)
    return [
        *head,
        Table(header, rows, "Primary metric per bench: pooled mean [95% interval]"),
        Para(
            "Cells: the pooled estimate over items x seeds (each item averaged over seeds, "
            "percentile bootstrap over items). 'missing': that model was never evaluated; "
            "'-': it was not evaluated on that bench. Teacher: the teacher of the bench's own "
            "domain (the generalist teacher, when one teacher learnt every domain). "
            "distilled - sft: paired over the items and seeds both models answered, "
            "on the per-item scores (for IFEval: prompt-level strict, not the primary metric). "
            "Average: the unweighted mean over benches; its interval combines the per-bench "
            "intervals assuming independent benches, and its paired difference weighs every "
            "bench equally."
        ),
    ]


# ---- synthesis ---------------------------------------------------------------------------
SYNTH_FIELDS = ("wanted", "accepted", "proposed", "skipped_known", "proposer_empty")


def synthesis_section(run: RunData) -> list[Block]:
    head: list[Block] = [Heading("Synthesis")]
    if not run.synth:
        return [*head, Para("No synthesis output: the synth stage is missing.")]
    domains = [run.synth[d] for d in sorted(run.synth)]
    return [
        *head,
        Table(
            ["domain", *SYNTH_FIELDS, "rejection reasons", "avg turns", "avg tokens", "wall s"],
            [_acceptance_row(s) for s in domains],
            "Acceptance per domain (synth_report.json)",
        ),
        *_rejections_table(domains),
        Table(
            [
                "domain",
                "trajectories",
                "passed",
                "median tokens",
                "max tokens",
                "median turns",
                "tool calls",
                "tool calls / trajectory",
            ],
            [_trajectory_row(s) for s in domains],
            "Accepted synthesis trajectories (trajectory store)",
        ),
    ]


def _acceptance_row(synth: SynthDomain) -> list[str]:
    s = synth.summary
    if s is None:
        return [synth.domain, *([MISSING] * (len(SYNTH_FIELDS) + 4))]
    rejected = sum(int(v) for v in (s.get("rejected") or {}).values())
    return [
        synth.domain,
        *(_num(s.get(f)) for f in SYNTH_FIELDS),
        str(rejected),
        _num(s.get("avg_turns"), 2),
        _num(s.get("avg_tokens"), 1),
        _num(s.get("wall_s"), 1),
    ]


def _rejections_table(domains: Sequence[SynthDomain]) -> list[Block]:
    """Rejections by reason (a rejected task counts once per failed rule)."""
    reasons = sorted({r for s in domains for r in ((s.summary or {}).get("rejected") or {})})
    if not reasons:
        return []
    rows = [
        [reason, *(str(((s.summary or {}).get("rejected") or {}).get(reason, 0)) for s in domains)]
        for reason in reasons
    ]
    caption = "Rejections by reason (a task counts once per rule it fails)"
    return [Table(["reason", *(s.domain for s in domains)], rows, caption)]


def _trajectory_row(synth: SynthDomain) -> list[str]:
    ts = synth.trajectories
    if not ts:
        return [synth.domain, *([MISSING] * 7)]
    calls = sum(sum(t.tool_calls.values()) for t in ts)
    return [
        synth.domain,
        str(len(ts)),
        str(sum(t.passed for t in ts)),
        _num(float(statistics.median(t.tokens for t in ts)), 1),
        str(max(t.tokens for t in ts)),
        _num(float(statistics.median(t.turns for t in ts)), 1),
        str(calls),
        _num(calls / len(ts), 2),
    ]


# ---- contamination -----------------------------------------------------------------------
def contamination_section(run: RunData) -> list[Block]:
    blocks: list[Block] = [Heading("Contamination audit")]
    audit = run.contamination
    if audit is None:
        blocks.append(Para("No evaluation audit: eval/contamination.json is missing."))
    else:
        blocks.append(
            Para(f"Evaluation audit: {audit.checked} items checked, hits: {len(audit.hits)}.")
        )
        if audit.hits:
            rows = [[h.item_id, h.source, str(h.shared_ngrams)] for h in audit.hits]
            blocks.append(Table(["item", "source", "shared n-grams"], rows, "Evaluation hits"))
    synth_hits = [
        [s.domain, str(h.get("item_id")), str(h.get("source")), str(h.get("shared_ngrams"))]
        for s in (run.synth or {}).values()
        for h in ((s.summary or {}).get("contamination") or [])
    ]
    if run.synth:
        # Synthesis rejects contaminated tasks and trajectories; these are the ones it caught.
        blocks.append(Para(f"Synthesis audit: hits: {len(synth_hits)} (each rejected)."))
    if synth_hits:
        header = ["domain", "item", "source", "shared n-grams"]
        blocks.append(Table(header, synth_hits, "Synthesis hits"))
    return blocks


# ---- training ----------------------------------------------------------------------------
def training_section(run: RunData) -> list[Block]:
    return [
        Heading("Training"),
        *_sft_blocks(run.sft),
        *_teacher_blocks(run.teachers),
        *_distill_blocks(run.distill),
    ]


CURVE_HEADER = ["steps", "first loss", "last loss", "min loss", "tokens", "tokens/s", "seconds"]


def curve_summary(records: list[Record]) -> list[str]:
    losses = [float(r["loss"]) for r in records if r.get("loss") is not None]
    rates = [float(r["tokens_per_s"]) for r in records if r.get("tokens_per_s") is not None]
    seconds = [float(r["step_s"]) for r in records if r.get("step_s") is not None]
    return [
        str(max((int(r["step"]) for r in records), default=0)),
        _num(losses[0] if losses else None, 4),
        _num(losses[-1] if losses else None, 4),
        _num(min(losses) if losses else None, 4),
        str(sum(int(r.get("tokens", 0)) for r in records)),
        _num(statistics.mean(rates) if rates else None, 1),
        _num(sum(seconds) if seconds else None, 1),
    ]


def _sft_blocks(sft: list[Record] | None) -> list[Block]:
    if sft is None:
        return [Heading("SFT", 3), Para("No SFT curve: sft/metrics.jsonl is missing.")]
    return [Heading("SFT", 3), Table(CURVE_HEADER, [curve_summary(sft)])]


def _teacher_blocks(teachers: dict[str, list[TeacherStage]] | None) -> list[Block]:
    head: list[Block] = [Heading("Teachers", 3)]
    if not teachers:
        return [*head, Para("No teacher curves: teachers/ is missing.")]
    recipes = [
        f"teacher-{domain}: {' → '.join(s.name for s in teachers[domain])}"
        for domain in sorted(teachers)
    ]
    rows = [
        [domain, stage.name, *curve_summary(stage.records)]
        for domain in sorted(teachers)
        for stage in teachers[domain]
        if not stage.is_rl
    ]
    rl = [(d, s) for d in sorted(teachers) for s in teachers[d] if s.is_rl]
    blocks: list[Block] = [*head, Bullets(recipes), Table(["domain", "stage", *CURVE_HEADER], rows)]
    if rl:
        rl_rows = [[d, s.name, *rl_summary(s)] for d, s in rl]
        blocks.append(Table(["domain", "stage", *RL_HEADER], rl_rows, "GRPO stages"))
    return blocks


RL_HEADER = ["steps", "first reward", "last reward", "last KL", "mean clip fraction", "seconds"]


def rl_summary(stage: TeacherStage) -> list[str]:
    """A GRPO stage's curve in one row: reward first and last, KL last, clip fraction mean."""
    reward, kl, clip = (stage.rl_series(m) for m in ("reward", "kl", "clip"))
    seconds = [float(r["seconds"]) for r in stage.records if r.get("seconds") is not None]
    return [
        str(max((int(r["step"]) for r in stage.records), default=0)),
        _num(reward[0][1] if reward else None, 3),
        _num(reward[-1][1] if reward else None, 3),
        _num(kl[-1][1] if kl else None, 5),
        _num(statistics.mean(v for _, v in clip) if clip else None, 3),
        _num(sum(seconds) if seconds else None, 1),
    ]


def _distill_blocks(steps: list[DistillStep] | None) -> list[Block]:
    head: list[Block] = [Heading("On-policy distillation", 3)]
    if not steps:
        return [*head, Para("No distillation curve: distill/metrics.jsonl is missing.")]
    losses = [s.loss for s in steps if s.loss is not None]
    seconds = sum(s.seconds or 0.0 for s in steps)
    overview = (
        f"{len(steps)} steps, last step {steps[-1].step}, {seconds:.1f} s; "
        f"loss from {_num(losses[0] if losses else None, 4)} to "
        f"{_num(losses[-1] if losses else None, 4)}."
    )
    domains = sorted({d for s in steps for d in (*s.domains, *s.rollouts)})
    header = [
        "domain",
        "last loss",
        "last KL",
        "last coverage",
        "tokens",
        "success rate",
        "truncation rate",
        "episodes",
        "tool calls / episode",
    ]
    return [
        *head,
        Para(overview),
        Table(
            header,
            [_distill_row(steps, d) for d in domains],
            "Per domain over all steps (last: the last step that trained on the domain)",
        ),
    ]


def _distill_row(steps: list[DistillStep], domain: str) -> list[str]:
    trained = [s.domains[domain] for s in steps if domain in s.domains]
    rolled = [s.rollouts[domain] for s in steps if domain in s.rollouts]
    last = trained[-1] if trained else None
    episodes = sum(r.episodes for r in rolled)

    def per_episode(attr: str) -> float | None:
        # Rates are per step; weigh each step by its episodes for the run's overall rate.
        if not episodes:
            return None
        return sum(getattr(r, attr) * r.episodes for r in rolled) / episodes

    return [
        domain,
        _num(last.loss if last else None, 4),
        _num(last.kl if last else None, 4),
        _num(last.coverage if last else None, 3),
        str(int(sum(m.tokens or 0.0 for m in trained))),
        _num(per_episode("success"), 3),
        _num(per_episode("truncation"), 3),
        str(int(episodes)),
        _num(per_episode("tool_calls"), 2),
    ]


# ---- appendix ----------------------------------------------------------------------------
def recipe_section(run: RunData) -> list[Block]:
    head: list[Block] = [Heading("Appendix: resolved recipe")]
    if run.recipe is None:
        return [*head, Para("recipe.yaml is missing.")]
    return [*head, Code(run.recipe)]
