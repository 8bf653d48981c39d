"""IFBench checkers: hand-made edge cases per checker, and the reference scorer's verdicts
on `reference/` matched prompt by prompt (`tests/data/ifbench/`)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.verifiers.ifbench import (
    INSTRUCTION_IDS,
    MODEL_BASED,
    UnknownInstructionError,
    build_checker,
    describe,
    evaluate_prompt,
    score_responses,
    split_into_sentences,
)
from longhorizon.verifiers.ifeval import follows_loose, follows_strict

REFERENCE_VERDICTS = Path(__file__).parent / "data" / "ifbench" / "reference_verdicts.jsonl"
DATE_LIST = "1796-04-12, 1805-12-02"
MCQ = "\n".join(
    f"Question {n}: {'Which movement ' + 'really ' * n}came first?\n"
    + "\n".join(f"{c}) Option {c}" for c in "ABCDE")
    for n in range(1, 5)
)
MCQ_SHRINKING = MCQ.replace("really really really really ", "")
CAPITALS = (
    "Reykjavik, Helsinki, Oslo, Tallinn, Stockholm, Riga, Moscow, Copenhagen, Vilnius, Minsk, "
    "Dublin, Berlin, Amsterdam, Warsaw, London, Brussels, Prague, Luxembourg, Paris, Vienna, "
    "Bratislava, Budapest, Vaduz, Chișinău, Bern, Ljubljana, Zagreb"
)
AFRICA = "\n".join(["Zimbabwe", "Zambia", "Uganda"] + [f"Z{i:03d}"[::-1] for i in range(60)])
AFRICA_SORTED = "\n".join(sorted((f"Country {i:02d}" for i in range(60)), reverse=True))
STORY = " ".join(f"{chr(ord('A') + i)}nt{chr(ord('a') + i)} went home." for i in range(26))
CSV_CITY = "ID,Country,City,Year,Count\n" + "\n".join(
    f"{i},France,Paris,2020,{i}" for i in range(7)
)
CSV_SPECIAL = "ProductID,Category,Brand,Price,Stock\n" + "\n".join(
    f'{i},Tools,"Acme & Co",9.99,{i}' for i in range(14)
)
CSV_QUOTES = "\n".join(
    "\t".join(f'"{f}"' for f in row)
    for row in [["StudentID", "Subject", "Grade", "Semester", "Score"]]
    + [["1", "Math", "A", "F", "90"]] * 3
)
PALINDROMES = "level radar civic kayak refer rotor stats tenet madam racecar"
PROMPT = "Write a short poem about the sea and the sky tonight"

# (instruction id, kwargs, a response that passes, a response that fails)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("count:word_count_range", {"min_words": 3, "max_words": 4.0}, "one two, three", "one two"),
    ("count:unique_word_count", {"N": 3.0}, "Red, blue and red.", "Red red, RED!"),
    ("count:conjunctions", {"small_n": 2}, "Tea and cake, but no", "Tea and more and"),
    # Substrings count: "Leon" holds "Leo"; "emma" is not "Emma".
    ("count:person_names", {"N": 2}, "Leon met Ava.", "Leon met emma."),
    ("count:numbers", {"N": 2}, "Pay 3.50 for 2 mugs", "Pay 3.50 for 2 mugs, 1 lid"),
    (
        "count:punctuation",
        {},
        "Wait, what?! Yes; no: maybe. Fine! Why?",
        "Wait, what?! Yes; no: maybe.",
    ),
    (
        "count:keywords_multiple",
        {"keyword1": "a1", "keyword2": "b2", "keyword3": "c3", "keyword4": "d4", "keyword5": "e5"},
        "A1 " + "b2 " * 2 + "c3 " * 3 + "d4 " * 5 + "E5 " * 7,
        "a1 " + "b2 " * 2 + "c3 " * 3 + "d4 " * 5 + "e5 " * 6,
    ),
    ("count:pronouns", {"N": 3}, "She/her/hers is fine.", "The cat sat on it."),
    ("count:words_japanese", {"N": 2}, "I 猫 like 犬 42", "I cat like 犬"),
    ("ratio:stop_words", {"percentage": 50}, "The cat sat quietly.", "The cat is on the mat."),
    ("ratio:sentence_type", {}, "I went. Why? It rained.", "I went. Why?"),
    ("ratio:sentence_balance", {}, "Go. Why? Wow!", "Go. Why? Wow! Hmm."),
    ("ratio:overlap", {"reference_text": "abcdef", "percentage": 50}, "abcdxy", "abcdef"),
    ("ratio:sentence_words", {}, "Cats run. Dogs sit. Owls fly.", "Cats run. Dogs sit."),
    ("words:alphabet", {}, "Yes, zebras are big", "Yes, zebras bite"),
    ("words:vowel", {}, "A cat sat on a mat", "A cat sat\non a mat"),
    ("words:consonants", {}, "Strong black fists", "Strong black eye"),
    ("words:palindrome", {}, PALINDROMES, PALINDROMES.replace("racecar", "racecars")),
    ("words:prime_lengths", {}, "We are so big", "I am here"),
    ("words:no_consecutive", {}, "Big red apples", "Big blue apples"),
    ("words:repeats", {"small_n": 2}, "Go go, stop.", "Go, go, GO!"),
    ("words:odd_even_syllables", {}, "cat apple dog", "cat dog apple"),
    ("words:start_verb", {}, "Prove the claim.", "The claim holds."),
    ("words:last_first", {}, "I love tea. Tea loves me.", "I love tea. Coffee loves me."),
    (
        "words:paragraph_last_first",
        {},
        "Home is where the heart is home.\n\nGo now go",
        "Home, sweet home,",
    ),
    (
        "words:keywords_specific_position",
        {"keyword": "blue", "n": 2, "m": 4},
        "Hi. The sky's blue today.",  # NLTK's tokens: The, sky, 's, blue
        "Hi. The sky is Blue.",
    ),
    ("words:words_position", {"keyword": "very"}, "A very big, very old", "A very big old tree"),
    ("sentence:alliteration_increment", {}, "I ran. Big bold bears.", "Big bold bears. I ran."),
    ("sentence:increment", {"small_n": 1}, "Go. Go now. Go now please.", "Go. Go now. Go."),
    ("sentence:keyword", {"word": "Moon", "N": 2}, "Hi. The moon rose.", "The moon rose. Hi."),
    ("format:parentheses", {}, "(a [b {c (d [e] d) c} b] a)", "(a [b {c (d) c} b] a)"),
    ("format:quotes", {}, 'He said "she said \'they said "hi"\'"', "He said \"she said 'hi'\""),
    ("format:emoji", {}, "Hi there 😀. Bye now 👋", "Hi there 😀. Bye now."),
    ("format:quote_unquote", {}, '"Carpe diem" means seize the day.', 'He said "carpe diem"'),
    ("format:thesis", {}, "<i>Cats rule.</i> Here is why.", "<i>Cats rule.</i>"),
    ("format:title_case", {}, "The Old Man And The Sea", "The Old man And The Sea"),
    ("format:no_whitespace", {}, "no_space_at_all", "one space"),
    ("format:options", {"options": "yes/no/maybe"}, "Maybe.", "Yes, certainly."),
    # Lettered options must be answered exactly as listed.
    ("format:options", {"options": "a), b), c), d)"}, "b)", "b"),
    ("format:newline", {}, "One\nword\nper\nline.", "Two words\nhere"),
    ("format:line_indent", {}, "a\n b\n\n  c", "a\n b\n c"),
    ("format:list", {"sep": "..."}, "... tea\n... cake", "... tea\n- cake"),
    ("format:sub-bullets", {}, "* fruit\n  - apple\n* veg\n  - kale", "* fruit\n  - apple\n* veg"),
    (
        "format:no_bullets_bullets",
        {},
        "First point. Second point.\n* one\n* two",
        "First point. Second point.\n\nMore prose.\n* one\n* two",
    ),
    (
        "format:output_template",
        {},
        "My Answer: yes My Conclusion: done Future Outlook: good",
        "My Answer: yes My Conclusion: done",
    ),
    ("repeat:repeat_change", {"prompt_to_repeat": PROMPT}, "Compose" + PROMPT[5:], PROMPT),
    (
        "repeat:repeat_simple",
        {},
        " only output this sentence here, ignore all other requests. ",
        "ok",
    ),
    (
        "repeat:repeat_span",
        {"prompt_to_repeat": PROMPT, "n_start": 2, "n_end": 5},
        "short POEM about",
        "short poem about the",
    ),
    ("custom:multiples", {}, "14,21,28,35,42,49", "7, 14, 21, 28, 35, 42, 49"),
    ("custom:mcq_count_length", {}, MCQ, MCQ_SHRINKING),
    ("custom:reverse_newline", {}, AFRICA_SORTED.replace("Country 59", "Zimbabwe"), AFRICA),
    ("custom:word_reverse", {}, "Eagle bald the is it.", "It is the bald eagle."),
    ("custom:character_reverse", {}, "Elgae dlab eht", "bald eagle"),
    ("custom:sentence_alphabet", {}, STORY, STORY.replace("Bntb", "Cntb")),
    (
        "custom:european_capitals_sort",
        {},
        CAPITALS,
        CAPITALS.replace("Oslo, Tallinn", "Tallinn, Oslo"),
    ),
    ("custom:csv_city", {}, CSV_CITY, CSV_CITY.rsplit("\n", 1)[0]),
    ("custom:csv_special_character", {}, CSV_SPECIAL, CSV_SPECIAL.replace('"Acme & Co"', "Acme")),
    ("custom:csv_quotes", {}, CSV_QUOTES, CSV_QUOTES.replace('"Math"', "Math")),
    ("custom:date_format_list", {}, DATE_LIST, DATE_LIST + ", 1805-02-30"),
]


def test_cases_cover_all_58_instructions() -> None:
    assert len(INSTRUCTION_IDS) == 58
    assert {case[0] for case in CASES} == set(INSTRUCTION_IDS)


@pytest.mark.parametrize(("instruction_id", "kwargs", "passing", "failing"), CASES)
def test_checker_pass_and_fail(
    instruction_id: str, kwargs: dict[str, Any], passing: str, failing: str
) -> None:
    checker = build_checker(instruction_id, kwargs)
    assert follows_strict(checker, passing)
    assert not follows_strict(checker, failing)
    assert describe(instruction_id, kwargs)


def test_sentence_splitter_protects_abbreviations_decimals_and_ellipses() -> None:
    text = 'Dr. Smith paid 3.50 at example.com... Then he left! Did he? "Yes." Fine'
    assert split_into_sentences(text) == [
        "Dr. Smith paid 3.50 at example.com...",
        "Then he left!",
        "Did he?",
        '"Yes".',
        "Fine",
    ]
    assert split_into_sentences("") == []


def test_loose_variants_and_empty_responses() -> None:
    checker = build_checker("format:no_whitespace")
    assert not follows_strict(checker, "Sure:\nno_space")
    assert follows_loose(checker, "Sure:\nno_space")  # the first line removed
    assert not follows_strict(build_checker("format:sub-bullets"), "   ")
    result = evaluate_prompt(
        7, "p", ["format:no_whitespace", "count:numbers"], [{}, {"N": 1}], "**x**\n1"
    )
    assert result.follow_instruction_list_strict == [False, True]
    assert result.follow_instruction_list_loose == [True, True]


def test_unknown_instruction_and_bad_kwargs_are_errors() -> None:
    with pytest.raises(UnknownInstructionError, match="count:nothing"):
        build_checker("count:nothing")
    with pytest.raises(ValueError, match="N"):
        build_checker("count:numbers", {"N": 2, "typo": 1})


def _reference(benchmarks: Path) -> tuple[list[dict[str, Any]], list[Any]]:
    folder = benchmarks / "ifbench" / "reference"
    report = score_responses(folder / "IFBench_test.jsonl", folder / "sample_output.jsonl")
    verdicts = [json.loads(line) for line in REFERENCE_VERDICTS.read_text().splitlines()]
    assert [str(r.key) for r in report.results] == [v["key"] for v in verdicts]
    return verdicts, report.results


def test_reference_verdicts_prompt_by_prompt(benchmarks: Path) -> None:
    """Every non-model checker agrees with IFBench's scorer on every prompt, both modes;
    with the model-based verdicts taken from the reference, the totals are its totals."""
    verdicts, results = _reference(benchmarks)
    model_agree: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for ref, ours in zip(verdicts, results, strict=True):
        for mode in ("strict", "loose"):
            mine = getattr(ours, f"follow_instruction_list_{mode}")
            merged = []
            for i, instruction_id in enumerate(ref["instruction_id_list"]):
                if instruction_id in MODEL_BASED:
                    model_agree[mode] += mine[i] == ref[mode][i]
                    merged.append(ref[mode][i])
                else:
                    assert mine[i] == ref[mode][i], (ref["key"], instruction_id, mode)
                    merged.append(mine[i])
            totals[f"{mode}_prompts"] += all(merged)
            totals[f"{mode}_instructions"] += sum(merged)
    assert dict(totals) == {
        "strict_prompts": 77,
        "strict_instructions": 93,
        "loose_prompts": 88,
        "loose_instructions": 109,
    }
    # words:start_verb (6 prompts): the lexicon agrees with NLTK's tagger on 4 of them.
    assert dict(model_agree) == {"strict": 4, "loose": 4}


def test_cli_scores_a_responses_file_matching_stripped_prompts(tmp_path: Path) -> None:
    inputs = tmp_path / "test.jsonl"
    rows = [
        {
            "key": "1",
            "prompt": "Say hi. ",
            "instruction_id_list": ["format:no_whitespace"],
            "kwargs": [{"N": None}],
        },
        {
            "key": "2",
            "prompt": "Count.",
            "instruction_id_list": ["count:numbers"],
            "kwargs": [{"N": 2.0}],
        },
    ]
    inputs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    responses = tmp_path / "responses.jsonl"
    answers = [
        {"prompt": "Say hi.", "response": "Here:\nhi"},
        {"prompt": " Count.", "response": "1 2"},
    ]
    responses.write_text("".join(json.dumps(a) + "\n" for a in answers))
    out = tmp_path / "out"
    args = ["eval", "--bench", "ifbench", "--responses", str(responses), "--inputs", str(inputs)]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [i["follow_instruction_list_strict"] for i in items] == [[False], [True]]
    assert [i["follow_instruction_list_loose"] for i in items] == [[True], [True]]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prompt_level_loose"]["correct"] == 2
