"""Soft routing (a probability-space mixture of teachers) and the generalist teacher.

The mixture is checked against hand-computed values, soft routing with weight 1 on the own
teacher against hard routing (bit for bit, scores, losses and gradients), and every loss kind
against a float64 reference built from the teachers' full distributions.
"""

from __future__ import annotations

import asyncio
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from pydantic import ValidationError

from longhorizon.ablate import load_study, plan_study
from longhorizon.ablate.keys import cell_keys
from longhorizon.ablate.study import resolve_cells
from longhorizon.core import Message
from longhorizon.distill.batch import RolloutSample, build_batch
from longhorizon.distill.config import DistillConfig, DistillLossConfig, default_mixture
from longhorizon.distill.losses import distill_loss
from longhorizon.distill.scoring import (
    ScoreRequest,
    TeacherScores,
    mixed_logprobs,
    score_sequences,
)
from longhorizon.distill.teachers import TeacherError, TeacherRegistry
from longhorizon.distill.types import StudentHead
from longhorizon.evaluation.stats import Estimate
from longhorizon.models.hf import HFBackend
from longhorizon.models.openai_backend import OpenAIBackend
from longhorizon.pipeline.recipe import Recipe, find_recipe
from longhorizon.pipeline.run import benches_for
from longhorizon.pipeline.stages import plan
from longhorizon.training.config import apply_override
from longhorizon.training.teach import stage_configs

KINDS = ["sva", "full_rkl", "sampled_token", "student_topk", "union", "sva_tail"]
K = 4


# ---- the mixture -----------------------------------------------------------------------------
def test_mixture_equals_the_hand_computed_probabilities() -> None:
    p1 = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    p2 = torch.tensor([[0.1, 0.3, 0.6]], dtype=torch.float64)
    got = mixed_logprobs([p1.log(), p2.log()], [0.25, 0.75])
    # 0.25 * 0.7 + 0.75 * 0.1 = 0.25; 0.25 * 0.2 + 0.75 * 0.3 = 0.275; 0.025 + 0.45 = 0.475
    want = torch.tensor([[0.25, 0.275, 0.475]], dtype=torch.float64)
    assert torch.allclose(got.exp(), want, rtol=0, atol=1e-15)
    assert torch.allclose(got, want.log(), rtol=0, atol=1e-14)


def test_mixture_is_stable_far_in_the_tails_and_exact_for_one_teacher() -> None:
    # Probabilities of e^-1000 underflow to 0 in probability space; logsumexp keeps them.
    lp = torch.tensor([[-1000.0, -1001.0, -math.inf]], dtype=torch.float64)
    got = mixed_logprobs([lp, lp], [0.5, 0.5])
    assert torch.equal(got, lp)  # log(0.5 e^x + 0.5 e^x) = x; -inf stays -inf
    single = torch.randn(3, 7).log_softmax(-1)
    assert torch.equal(mixed_logprobs([single], [1.0]), single)
    with pytest.raises(ValueError, match="share the vocabulary size"):
        mixed_logprobs([single, single[:, :5]], [0.5, 0.5])


# ---- config validation -----------------------------------------------------------------------
def config(**extra: Any) -> DistillConfig:
    return DistillConfig.model_validate(
        {
            "model": "tiny-llama",
            "teachers": [
                {"domain": "arith", "model": "tiny-tool-caller"},
                {"domain": "maths", "model": "tiny-llama"},
                {"domain": "search", "model": "tiny-llama"},
            ],
            "tasks": [],
            **extra,
        }
    )


def test_default_soft_mixture_is_half_own_teacher_and_the_rest_shared() -> None:
    cfg = config(routing="soft")
    assert cfg.teacher_mixture("maths") == {"arith": 0.25, "maths": 0.5, "search": 0.25}
    assert default_mixture("a", ["a"]) == {"a": 1.0}
    assert default_mixture("a", ["a", "b"]) == {"a": 0.5, "b": 0.5}
    given = config(routing="soft", routing_weights={"maths": {"maths": 0.8, "arith": 0.2}})
    assert given.teacher_mixture("maths") == {"arith": 0.2, "maths": 0.8}
    assert given.teacher_mixture("arith") == {"arith": 0.5, "maths": 0.25, "search": 0.25}
    # A zero weight drops the teacher from the mixture (it is not run at all).
    zero = config(routing="soft", routing_weights={"maths": {"maths": 1.0, "arith": 0.0}})
    assert zero.teacher_mixture("maths") == {"maths": 1.0}
    assert config().teacher_mixture("maths") is None  # hard


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"maths": {"physics": 1.0}}, r"'maths' mixes unknown teacher\(s\) \['physics'\]"),
        ({"chemistry": {"maths": 1.0}}, r"sample domain 'chemistry' has no teacher"),
        ({"maths": {"maths": 1.2, "arith": -0.2}}, r"'maths' gives negative weight\(s\) to"),
        ({"maths": {"maths": 0.5, "arith": 0.3}}, r"'maths' weights sum to 0.8, not 1"),
        ({"maths": {}}, r"'maths' weights sum to 0, not 1"),
    ],
)
def test_bad_routing_weights_fail_validation_naming_the_problem(
    weights: dict[str, dict[str, float]], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        config(routing="soft", routing_weights=weights)


def test_weights_need_soft_routing_and_soft_needs_in_process_teachers() -> None:
    with pytest.raises(ValidationError, match="routing_weights is set but routing is hard"):
        config(routing_weights={"maths": {"maths": 1.0}})
    served = {"domain": "maths", "model": "m", "backend": "openai", "base_url": "http://x"}
    with pytest.raises(ValidationError, match=r"teacher\(s\) for \['maths'\] are served"):
        DistillConfig.model_validate(
            {"model": "m", "teachers": [served], "tasks": [], "routing": "soft"}
        )


def test_default_routing_fields_stay_out_of_the_dump_and_fingerprint() -> None:
    hard, explicit = config(), config(routing="hard", routing_weights={})
    assert "routing" not in hard.model_dump() and "routing_weights" not in hard.model_dump()
    assert hard.fingerprint() == explicit.fingerprint()
    soft = config(routing="soft")
    assert soft.model_dump()["routing"] == "soft" and soft.fingerprint() != hard.fingerprint()
    assert DistillConfig.model_validate(soft.model_dump()) == soft  # config.yaml round trip


# ---- scoring with real (tiny) teachers -------------------------------------------------------
@pytest.fixture(scope="module")
def backends(tiny_llama_path: str, tool_caller_path: str) -> dict[str, HFBackend]:
    return {
        "arith": HFBackend.from_pretrained(tool_caller_path),
        "maths": HFBackend.from_pretrained(tiny_llama_path),
    }


def requests_for(backend: HFBackend, domains: tuple[str, ...]) -> list[ScoreRequest]:
    prompt = backend.renderer.prompt_ids([Message(role="user", content="two plus three?")])
    ids = [*prompt, 504, 3575, 28, 17]
    positions = list(range(len(prompt), len(ids)))
    student = np.array([[5, 7, -1, 9]] * len(positions), dtype=np.int64)
    return [ScoreRequest(d, ids, positions, student_ids=student, full=True) for d in domains]


def score(registry: TeacherRegistry, requests: list[ScoreRequest]) -> list[TeacherScores]:
    return asyncio.run(score_sequences(registry, requests, top_k=K))


def test_soft_routing_with_weight_one_on_the_own_teacher_equals_hard_exactly(
    backends: dict[str, HFBackend],
) -> None:
    requests = requests_for(backends["arith"], ("arith", "maths", "arith"))
    hard = score(TeacherRegistry(backends), requests)
    own = {"arith": {"arith": 1.0}, "maths": {"maths": 1.0}}
    soft = score(TeacherRegistry(backends, own), requests)
    for h, s in zip(hard, soft, strict=True):
        for name in ("target_logprobs", "top_ids", "top_logprobs", "student_logprobs"):
            assert np.array_equal(getattr(h, name), getattr(s, name)), name
        assert h.full_logprobs is not None and s.full_logprobs is not None
        assert np.array_equal(h.full_logprobs, s.full_logprobs)
    # ... and so every loss kind gives the same value and the same gradients.
    for kind in KINDS:
        (loss_h, grads_h), (loss_s, grads_s) = (run_loss(requests, x, kind) for x in (hard, soft))
        assert loss_h == loss_s, kind
        assert all(torch.equal(a, b) for a, b in zip(grads_h, grads_s, strict=True)), kind


def test_mixture_scores_are_the_mixture_of_each_teachers_full_distribution(
    backends: dict[str, HFBackend],
) -> None:
    (request,) = requests_for(backends["arith"], ("maths",))
    (arith,) = score(TeacherRegistry(backends), [ScoreRequest("arith", *fields(request))])
    (maths,) = score(TeacherRegistry(backends), [request])
    mix = {"arith": {"arith": 1.0}, "maths": {"arith": 0.3, "maths": 0.7}}
    registry = TeacherRegistry(backends, mix)
    (mixed,) = score(registry, [request])
    want_PV = reference_mixture(arith, maths, 0.3, 0.7)
    assert mixed.full_logprobs is not None
    assert np.allclose(mixed.full_logprobs, want_PV, rtol=0, atol=2e-6)
    assert mixed.top_ids.tolist() == np.argsort(-want_PV, axis=-1)[:, :K].tolist()
    rows = np.arange(len(request.positions))
    targets = np.asarray(request.input_ids)[request.positions]
    assert np.allclose(mixed.target_logprobs, want_PV[rows, targets], atol=2e-6)
    assert mixed.student_logprobs is not None
    assert np.allclose(mixed.student_logprobs[:, [0, 1, 3]], want_PV[:, [5, 7, 9]], atol=2e-6)
    assert (mixed.student_logprobs[:, 2] == -np.inf).all()  # padding id
    # The two teachers differ, so the mixture is neither of them.
    assert not np.allclose(mixed.full_logprobs, maths.full_logprobs, atol=1e-3)
    ids = backends["arith"].model_id, backends["maths"].model_id
    assert registry.name("maths") == f"mix({ids[0]}:0.3,{ids[1]}:0.7)"  # its cache key
    assert TeacherRegistry(backends).name("maths") == ids[1]  # hard: the key as before


@pytest.mark.parametrize("kind", KINDS)
def test_every_loss_kind_trains_against_the_mixture(
    backends: dict[str, HFBackend], kind: str
) -> None:
    """Loss and gradients on the mixture's scores equal a float64 reference computed from the
    teachers' full distributions mixed by hand, on the kind's own support."""
    (request,) = requests_for(backends["arith"], ("maths",))
    (arith,) = score(TeacherRegistry(backends), [ScoreRequest("arith", *fields(request))])
    (maths,) = score(TeacherRegistry(backends), [request])
    (mixed,) = score(TeacherRegistry(backends, {"maths": {"arith": 0.4, "maths": 0.6}}), [request])
    loss, grads = run_loss([request], [mixed], kind)
    want, want_grads = reference_loss(request, reference_mixture(arith, maths, 0.4, 0.6), kind)
    assert loss == pytest.approx(want, rel=1e-5, abs=1e-9)
    for got, ref in zip(grads, want_grads, strict=True):
        assert torch.allclose(got, ref, rtol=1e-4, atol=1e-9)


def test_registry_refuses_a_mixture_with_a_served_teacher(
    backends: dict[str, HFBackend], tiny_llama_path: str
) -> None:
    served = OpenAIBackend("http://127.0.0.1:9", model="m", tokenizer=tiny_llama_path)
    teachers = {"arith": backends["arith"], "maths": served}
    registry = TeacherRegistry(teachers, {"arith": {"arith": 0.5, "maths": 0.5}})
    tokenizer = backends["arith"].tokenizer
    with pytest.raises(TeacherError, match=r"mixes served teacher\(s\) \['maths'\]"):
        registry.check({"arith"}, tokenizer, "sampled_token")
    with pytest.raises(TeacherError, match="no teacher mixture for domain 'maths'"):
        TeacherRegistry(backends, {"arith": {"arith": 1.0}}).check({"maths"}, tokenizer)


def test_domains_with_the_same_teacher_share_one_backend(tiny_llama_path: str) -> None:
    from longhorizon.distill.config import TeacherSpec

    specs = [TeacherSpec(domain=d, model=tiny_llama_path) for d in ("arith", "maths")]
    registry = TeacherRegistry.open(specs)
    assert registry["arith"] is registry["maths"]  # a generalist teacher is loaded once
    asyncio.run(registry.aclose())


# ---- helpers ---------------------------------------------------------------------------------
def fields(request: ScoreRequest) -> tuple[Any, ...]:
    return (request.input_ids, request.positions, request.student_ids, request.full)


def reference_mixture(a: TeacherScores, b: TeacherScores, wa: float, wb: float) -> np.ndarray:
    """log(wa p_a + wb p_b) in float64 from each teacher's full logprobs."""
    assert a.full_logprobs is not None and b.full_logprobs is not None
    pa, pb = np.exp(a.full_logprobs.astype(np.float64)), np.exp(b.full_logprobs.astype(np.float64))
    return np.log(wa * pa + wb * pb)


def student(n: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(n, t, 8, generator=generator, dtype=torch.float64)
    weight = torch.randn(49152, 8, generator=generator, dtype=torch.float64)
    return hidden.requires_grad_(), weight.requires_grad_()


def run_loss(
    requests: list[ScoreRequest], scores: list[TeacherScores], kind: str
) -> tuple[float, list[torch.Tensor]]:
    samples = [
        RolloutSample(
            r.domain, r.input_ids, [int(p in r.positions) for p in range(len(r.input_ids))]
        )
        for r in requests
    ]
    batch = build_batch(samples, scores, sorted({r.domain for r in requests}), 0, K)
    hidden, weight = student(len(samples), batch.layout.loss_mask_NT.shape[1])
    cfg = DistillLossConfig(kind=kind, k=K, monitor_coverage=False)  # type: ignore[arg-type]
    out = distill_loss(StudentHead(hidden, weight), batch.teacher, batch.layout, cfg)
    out.loss.backward()
    assert hidden.grad is not None and weight.grad is not None
    return float(out.loss.detach()), [hidden.grad, weight.grad]


def reference_loss(
    request: ScoreRequest, mix_PV: np.ndarray, kind: str
) -> tuple[float, list[torch.Tensor]]:
    """Mean over the trained positions of the kind's reverse KL against the mixture, float64."""
    rows = torch.as_tensor(request.positions) - 1
    hidden, weight = student(1, len(request.input_ids) - 1)
    logp_s = (hidden[0, rows] @ weight.T).log_softmax(-1)  # (P, V)
    logp_t = torch.as_tensor(mix_PV)
    targets = torch.as_tensor(request.input_ids)[request.positions]
    losses = [position_loss(logp_s[i], logp_t[i], int(targets[i]), kind) for i in range(len(rows))]
    loss = torch.stack(losses).mean()
    loss.backward()
    assert hidden.grad is not None and weight.grad is not None
    return float(loss.detach()), [hidden.grad, weight.grad]


def position_loss(ls: torch.Tensor, lt: torch.Tensor, target: int, kind: str) -> torch.Tensor:
    teacher_top = lt.topk(K).indices
    student_top = torch.tensor([5, 7, 9])  # the requests' student ids (-1 is padding)
    if kind == "full_rkl":
        return (ls.exp() * (ls - lt)).sum()
    if kind == "sampled_token":
        return -(lt[target] - ls[target]).detach() * ls[target]
    if kind == "sva_tail":
        s, t = ls[teacher_top], lt[teacher_top]
        tail_s, tail_t = torch.log1p(-s.exp().sum()), torch.log1p(-t.exp().sum())
        return (s.exp() * (s - t)).sum() + tail_s.exp() * (tail_s - tail_t)
    support = {
        "sva": teacher_top,
        "student_topk": student_top,
        "union": torch.unique(torch.cat([teacher_top, student_top])),
    }[kind]
    s, t = ls[support].log_softmax(-1), lt[support].log_softmax(-1)
    return (s.exp() * (s - t)).sum()


def test_one_soft_routed_opd_step_runs_end_to_end(tmp_path: Path) -> None:
    from longhorizon.training.metrics import read_metrics
    from tests.test_distill_opd import opd_fields, run_in_process

    fields = opd_fields(
        tmp_path,
        steps=1,
        teachers=[
            {"domain": "arith", "model": "tiny-tool-caller"},
            {"domain": "maths", "model": "tiny-llama"},
        ],
        routing="soft",
        routing_weights={"maths": {"maths": 0.7, "arith": 0.3}},
        rollout={"prompts_per_step": 2, "concurrency": 2, "max_tokens": 12, "max_turns": 1},
    )
    run_in_process(fields)
    (record,) = read_metrics(tmp_path / "run")
    assert np.isfinite(record["loss"]) and set(record["domains"]) == {"arith", "maths"}
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "routing: soft" in saved and "maths: 0.7" in saved


# ---- recipes, stage keys, the study ----------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
# The tiny recipe's stage keys on main at bf19f35, before routing existed: recipes and studies
# that leave the routing fields at their defaults must keep every cached stage.
TINY_KEYS = {
    "synth": "synth-9e658e984123d822",
    "sft": "sft-550670382023a5a2",
    "teachers": "teachers-3a74d1a3f16422f3",
    "distill": "distill-708eef9e8c97bc82",
}


def tiny_recipe(*overrides: str) -> Recipe:
    tree = yaml.safe_load(find_recipe("tiny").read_text())
    for assignment in overrides:
        apply_override(tree, assignment)
    return Recipe.model_validate(tree)


def test_default_routing_keeps_the_stage_keys_of_earlier_runs() -> None:
    assert cell_keys(tiny_recipe()).stages == TINY_KEYS
    explicit = ("distill.routing=hard", "distill.routing_weights={}", "teachers.generalist=false")
    assert cell_keys(tiny_recipe(*explicit)).stages == TINY_KEYS
    soft = cell_keys(tiny_recipe("distill.routing=soft")).stages
    assert soft["teachers"] == TINY_KEYS["teachers"] and soft["distill"] != TINY_KEYS["distill"]


def test_generalist_trains_one_teacher_on_every_domain_and_routes_all_to_it() -> None:
    p = plan(tiny_recipe("teachers.generalist=true"), "student")
    assert list(p.teachers) == ["generalist"]
    teach = p.teachers["generalist"]
    assert teach.domains == ("instruction", "search") == teach.trained_domains()
    (stage,) = stage_configs(teach)
    assert stage.data.domains == ("instruction", "search")
    assert stage.data.paths == tuple(
        Path(f"runs/tiny/synth/{d}/trajectories") for d in ("instruction", "search")
    )
    assert stage.final_path == Path("runs/tiny/teachers/generalist/teacher")
    assert stage.lr == 1.0e-3  # the recipe's teacher overrides, `generalist` not among them
    assert [(t.domain, t.model) for t in p.distill.teachers] == [
        ("instruction", "runs/tiny/teachers/generalist/teacher"),
        ("search", "runs/tiny/teachers/generalist/teacher"),
    ]
    assert list(p.models()) == ["base", "sft", "teacher-generalist", "distilled"]
    assert benches_for(p, "teacher-generalist") == ["instruction-heldout", "search-heldout"]
    hard = plan(tiny_recipe(), "student")
    assert benches_for(hard, "teacher-search") == ["search-heldout"]
    assert hard.teachers["search"].domains is None  # a domain teacher: as before
    assert stage_configs(hard.teachers["search"])[0].data.domains == ("search",)


def test_generalist_recipe_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"teachers\.generalist must be true or false"):
        tiny_recipe("teachers.generalist=maybe")
    with pytest.raises(ValidationError, match="soft would mix that teacher with itself"):
        tiny_recipe("teachers.generalist=true", "distill.routing=soft")


def test_routing_study_parses_and_expands_to_its_cells() -> None:
    study, base = load_study(ROOT / "studies" / "routing.yaml")
    assert study.baseline_name == "hard" and study.seeds == (0, 1, 2)
    cells = resolve_cells(study, base)
    names = [c.name for c in cells]
    assert names == [f"{v}/seed{s}" for s in (0, 1, 2) for v in ("hard", "soft", "generalist")]
    assert all(c.model == "distilled" for c in cells)
    planned, benches = plan_study(study, base)
    assert benches == ["instruction-heldout", "search-heldout"]
    keys = {p.cell.name: p.keys.stages for p in planned}
    assert keys["hard/seed0"] == TINY_KEYS  # the baseline shares every tiny-recipe stage
    hard, soft, generalist = keys["hard/seed1"], keys["soft/seed1"], keys["generalist/seed1"]
    assert hard["sft"] == soft["sft"] == generalist["sft"]
    assert hard["teachers"] == soft["teachers"] != generalist["teachers"]
    assert len({hard["distill"], soft["distill"], generalist["distill"]}) == 3
    soft_cell = next(c for c in cells if c.name == "soft/seed0")
    assert plan(soft_cell.recipe, "s").distill.teacher_mixture("search") == {
        "instruction": 0.5,
        "search": 0.5,
    }


def test_report_takes_the_generalist_as_every_domains_teacher(tmp_path: Path) -> None:
    from longhorizon.report import build_results, load_run
    from tests.test_report import make_run

    run_dir = make_run(tmp_path)
    shutil.rmtree(run_dir / "teachers" / "instruction")
    (run_dir / "teachers" / "search").rename(run_dir / "teachers" / "generalist")
    (run_dir / "eval" / "teacher-search").rename(run_dir / "eval" / "teacher-generalist")
    run = load_run(run_dir)
    assert run.notes == []  # no teacher-<domain> evaluation is expected
    rows = {r.bench: r for r in build_results(run).rows}
    assert rows["search-heldout"].cells["teacher"] == Estimate(0.75, 0.5, 1.0, 4)
