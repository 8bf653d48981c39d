"""DomainSpec and the registry: the built-in domains, one verify per domain and its routing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from longhorizon.core import Task, Trajectory, VerifierSpec
from longhorizon.core.messages import FunctionCall, ToolCall
from longhorizon.core.provenance import RunProvenance
from longhorizon.core.trajectory import Step
from longhorizon.domains import INSTRUCTION, SEARCH, LevelError, UnknownVerifierError, registry
from longhorizon.domains import verify as verify_any
from longhorizon.domains.instruction import expert_response
from longhorizon.domains.registry import UnknownDomainError
from longhorizon.pipeline.recipe import Recipe
from longhorizon.pipeline.stages import plan

TARGET = Task(
    id="s1",
    domain="search",
    instruction="Which river flows through the capital of Varo?",
    answer="Varo River",
    evidence=["p1", "p2"],
)


def trajectory(task: Task, answer: str | None, reads: list[str], tool: str = "visit") -> Trajectory:
    steps = [
        Step(
            index=i,
            state_refs=[page],
            action=ToolCall(
                id=f"c{i}", function=FunctionCall(name=tool, arguments=json.dumps({"id": page}))
            ),
            observation=f"page {page}",
        )
        for i, page in enumerate(reads)
    ]
    return Trajectory(
        id=f"{task.id}/t",
        task_id=task.id,
        domain=task.domain,
        steps=steps,
        final_answer=answer,
        provenance=RunProvenance(model="scripted", backend="scripted"),
    )


def outcome(verdicts: list) -> list[tuple[str, bool]]:  # type: ignore[type-arg]
    return [(v.verifier, v.passed) for v in verdicts]


def test_builtin_domains_are_registered_and_a_miss_names_them() -> None:
    assert {"instruction", "search"} <= set(registry.names())
    assert registry.names() == sorted(registry.names())
    assert registry.get("search") is SEARCH and registry.get("instruction") is INSTRUCTION
    with pytest.raises(UnknownDomainError) as err:
        registry.get("chess")
    assert str(err.value) == f"unknown domain 'chess'; known: {', '.join(registry.names())}"
    assert registry.register(SEARCH) is SEARCH  # the same spec again: a no-op
    with pytest.raises(ValueError, match="domain 'search' is already registered"):
        registry.register(dataclasses.replace(SEARCH, description="another search"))


def test_specs_name_their_bench_tools_and_resources() -> None:
    assert (SEARCH.bench, INSTRUCTION.bench) == ("search-heldout", "instruction-heldout")
    assert SEARCH.tools == ("search", "visit", "python") and INSTRUCTION.tools == ()
    assert SEARCH.corpus(Path("out")) == [Path("out/corpus/corpus.jsonl")]
    assert INSTRUCTION.corpus(Path("out")) == []
    assert registry.by_bench("search-heldout") is SEARCH
    assert registry.by_bench("ifeval") is INSTRUCTION  # an extra bench of the domain
    assert registry.by_bench("molbench") is registry.get("molecules")  # molecules extras
    assert registry.by_bench("hipho") is registry.get("science")


def test_levels_are_validated_by_their_domain() -> None:
    assert SEARCH.parse_level({"entities": 300}).entities == 300  # type: ignore[attr-defined]
    assert SEARCH.parse_level('{"entities": 300}') == SEARCH.parse_level({"entities": 300})
    assert SEARCH.parse_level(None) == SEARCH.level()
    with pytest.raises(LevelError, match=r"^search level \{'entitites': 3\}: "):
        SEARCH.parse_level({"entitites": 3})
    with pytest.raises(LevelError, match=r"^instruction level "):
        INSTRUCTION.parse_level('{"max_instructions": 9}')


def test_search_task_without_specs_checks_the_answer_and_the_evidence_path() -> None:
    assert outcome(verify_any(TARGET, trajectory(TARGET, "the varo river", ["p1", "p2"]))) == [
        ("exact_match", True),
        ("evidence_path", True),
    ]
    missed = verify_any(TARGET, trajectory(TARGET, "Varo River", ["p1"]))
    assert outcome(missed) == [("exact_match", True), ("evidence_path", False)]
    assert missed[1].details == {"required": ["p1", "p2"], "missing": ["p2"]}
    assert missed[1].score == 0.5
    # A search result is not a read page: only successful visits count.
    searched = verify_any(TARGET, trajectory(TARGET, "Varo River", ["p1", "p2"], tool="search"))
    assert outcome(searched) == [("exact_match", True), ("evidence_path", False)]
    wrong = verify_any(TARGET, trajectory(TARGET, "Nile", ["p1", "p2"]))
    assert outcome(wrong) == [("exact_match", False), ("evidence_path", True)]


def test_search_specs_choose_the_checks_and_their_pages() -> None:
    only_answer = TARGET.model_copy(update={"verifiers": [VerifierSpec(name="exact_match")]})
    assert outcome(verify_any(only_answer, trajectory(only_answer, "Varo River", []))) == [
        ("exact_match", True)
    ]
    pages = VerifierSpec(name="evidence_path", params={"pages": ["p9"]})
    own_pages = TARGET.model_copy(update={"verifiers": [pages]})
    assert outcome(verify_any(own_pages, trajectory(own_pages, None, ["p9"]))) == [
        ("evidence_path", True)
    ]


def test_an_unknown_verifier_is_an_error_in_every_domain() -> None:
    odd = TARGET.model_copy(
        update={"verifiers": [VerifierSpec(name="exact_match"), VerifierSpec(name="vibes")]}
    )
    with pytest.raises(UnknownVerifierError) as err:
        verify_any(odd, trajectory(odd, "Varo River", ["p1", "p2"]))
    assert str(err.value) == (
        "task s1: unknown verifier(s) 'vibes' for the search domain; "
        "it knows: evidence_path, exact_match"
    )
    prompt = odd.model_copy(update={"id": "i1", "domain": "instruction"})
    with pytest.raises(UnknownVerifierError) as err:
        verify_any(prompt, trajectory(prompt, "text", []))
    assert str(err.value) == (
        "task i1: unknown verifier(s) 'exact_match', 'vibes' for the instruction domain; "
        "it knows: choice, ifeval"
    )
    bare = prompt.model_copy(update={"verifiers": []})
    with pytest.raises(ValueError, match="task i1 has no verifier of the instruction domain"):
        verify_any(bare, trajectory(bare, "text", []))


def test_verify_routes_by_the_task_domain(tmp_path: Path) -> None:
    level = INSTRUCTION.parse_level({"long_context_share": 0.0})
    task = INSTRUCTION.open_world(level, 0, tmp_path).heldout(1, 1_000_000)[0]
    verdicts = verify_any(task, trajectory(task, expert_response(task), []))
    assert verdicts and all(v.passed for v in verdicts) and verdicts[-1].verifier == "ifeval_all"
    assert verdicts == INSTRUCTION.verify(task, trajectory(task, expert_response(task), []))
    alien = TARGET.model_copy(update={"domain": "chess"})
    with pytest.raises(UnknownDomainError, match=r"^unknown domain 'chess'; known: "):
        verify_any(alien, trajectory(alien, "x", []))


def test_recipes_take_domains_and_levels_from_the_registry(tmp_path: Path) -> None:
    base = {"name": "r", "out": str(tmp_path), "student": {"model": "tiny-llama"}}
    recipe = Recipe.model_validate(
        {
            **base,
            "synth": {
                "domains": {"search": 2, "instruction": 2},
                "levels": {"search": {"entities": 60}},
            },
        }
    )
    assert recipe.benches() == ["instruction-heldout", "search-heldout"]
    p = plan(recipe, "tiny-llama")
    assert p.levels["search"].entities == 60  # type: ignore[attr-defined]
    assert p.levels["instruction"] == INSTRUCTION.level()
    assert p.distill.corpus == {"search": (tmp_path / "synth/search/corpus/corpus.jsonl",)}
    with pytest.raises(ValueError, match=r"unknown domain\(s\) \['chess'\]; registered: \["):
        Recipe.model_validate({**base, "synth": {"domains": {"chess": 1}}})
    with pytest.raises(ValueError, match=r"levels given for domain\(s\) \['search'\] not in"):
        Recipe.model_validate(
            {**base, "synth": {"domains": {"instruction": 1}, "levels": {"search": {}}}}
        )
    with pytest.raises(ValueError, match="search level"):
        Recipe.model_validate(
            {**base, "synth": {"domains": {"search": 1}, "levels": {"search": {"size": 3}}}}
        )
