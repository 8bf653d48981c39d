"""Benchmark data comes from one explicit setting; missing data raises, never audits nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from longhorizon.core import benchmarks
from longhorizon.core.benchmarks import (
    BENCHMARKS_ENV,
    BenchmarkDataMissing,
    benchmark_dir,
    benchmark_file,
    configured_benchmark_dir,
)
from longhorizon.evaluation import ifeval, molbench
from longhorizon.evaluation.options import EvalOptions
from longhorizon.synthesis.decontam import benchmark_index

HOW = f"set {BENCHMARKS_ENV} to the benchmark folder (the one holding ifeval/ and molbench/)"


def test_the_variable_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ifeval").mkdir()
    (tmp_path / "ifeval" / "input_data.jsonl").write_text("{}\n")
    monkeypatch.setenv(BENCHMARKS_ENV, str(tmp_path))
    assert benchmark_dir() == tmp_path
    assert benchmark_file("ifeval", "input_data.jsonl") == tmp_path / "ifeval" / "input_data.jsonl"
    with pytest.raises(BenchmarkDataMissing, match=r"molbench-ms-1\.csv is missing") as err:
        benchmark_file("molbench", "molbench-ms-1.csv")
    assert HOW in str(err.value)


def test_a_missing_folder_raises_saying_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BENCHMARKS_ENV, "/nonexistent/benchmarks")
    with pytest.raises(BenchmarkDataMissing) as err:
        benchmark_dir()
    assert str(err.value).startswith(f"{BENCHMARKS_ENV}=/nonexistent/benchmarks is not a folder; ")
    assert HOW in str(err.value)
    with pytest.raises(BenchmarkDataMissing):  # the audit raises too: it never indexes nothing
        benchmark_index()


def test_unset_falls_back_to_the_checkout_folder_only_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BENCHMARKS_ENV, raising=False)
    monkeypatch.setattr(benchmarks, "checkout_benchmark_dir", lambda: tmp_path / "shared")
    with pytest.raises(BenchmarkDataMissing, match=re.escape(f"is unset (no {tmp_path}/shared)")):
        benchmark_dir()
    (tmp_path / "shared").mkdir()
    assert benchmark_dir() == configured_benchmark_dir() == tmp_path / "shared"
    monkeypatch.setattr(benchmarks, "checkout_benchmark_dir", lambda: None)  # an installed wheel
    unset = f"^no benchmark data: {BENCHMARKS_ENV} is unset;"
    with pytest.raises(BenchmarkDataMissing, match=unset):
        benchmark_dir()


def test_none_turns_the_audit_off_and_the_adapters_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BENCHMARKS_ENV, "none")
    assert configured_benchmark_dir() is None
    assert benchmark_index() is None  # "audit off", not an empty index that flags nothing
    off = re.escape(f"benchmark data is off ({BENCHMARKS_ENV}=none)")
    with pytest.raises(BenchmarkDataMissing, match=off):
        molbench.data_path(EvalOptions())
    with pytest.raises(BenchmarkDataMissing, match="benchmark data is off"):
        ifeval.inputs_path(EvalOptions())
    # an explicit --data-dir still works, and so do the user's own evaluation files
    given = molbench.data_path(EvalOptions(data_dir=tmp_path))
    assert given == tmp_path / "molbench" / molbench.FILE
    mine = tmp_path / "mine.jsonl"
    mine.write_text(json.dumps({"q": " ".join(f"w{i}" for i in range(13))}) + "\n")
    index = benchmark_index([mine])
    assert index is not None and index.check("a", " ".join(f"w{i}" for i in range(13)))


def test_the_audit_refuses_an_empty_folder_and_missing_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BENCHMARKS_ENV, str(tmp_path))
    empty = re.escape(f"{tmp_path} holds no evaluation files")
    with pytest.raises(BenchmarkDataMissing, match=empty):
        benchmark_index()
    missing = re.escape("evaluation files for the audit not found: /no.jsonl")
    with pytest.raises(FileNotFoundError, match=missing):
        benchmark_index([Path("/no.jsonl")])
    (tmp_path / "bench.jsonl").write_text(json.dumps({"p": " ".join(["word"] * 13)}) + "\n")
    index = benchmark_index()
    assert index is not None and index.check("x", " ".join(["word"] * 13)).source == "bench.jsonl"
