"""Shared fixtures: tiny seeded models (built once per machine), the real SmolLM2-135M, the
benchmark data (LONGHORIZON_BENCHMARKS), a PostgreSQL server and a wide terminal for the CLI's
boxed errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# rich wraps its boxed errors at the terminal width (80 columns when it cannot tell), so a
# message with a long temporary path breaks across lines and a substring check fails at some
# path lengths; tests (and the CLI subprocesses they start) see 300 columns. A Console reads
# COLUMNS when it is built, so this runs before anything imports a CLI module.
os.environ["COLUMNS"] = "300"

import pytest

from longhorizon.core.benchmarks import BenchmarkDataMissing, benchmark_dir
from longhorizon.models.registry import resolve_model
from tests.postgres import PostgresServer, PostgresUnavailable


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


# Session servers that a worker of pytest-xdist starts for itself: the tests that share one run
# on one worker (`--dist loadgroup`), so the suite starts each at most once.
SHARED_SERVERS = {
    "vllm_server": "vllm",
    "vllm_policy_server": "vllm",
    "ray_cluster": "ray",
    "micro_run_dir": "micro-run",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        groups = {SHARED_SERVERS[f] for f in fixtures if f in SHARED_SERVERS}
        if item.get_closest_marker("vllm"):  # tests that start their own vLLM servers too
            groups.add("vllm")
        if len(groups) > 1:
            raise pytest.UsageError(f"{item.nodeid} needs servers of two xdist groups: {groups}")
        if groups:
            item.add_marker(pytest.mark.xdist_group(groups.pop()))


@pytest.fixture(scope="session")
def benchmarks() -> Path:
    """The benchmark folder the setting names: skipped without it, an error under CI=true."""
    try:
        return benchmark_dir()
    except BenchmarkDataMissing as exc:
        problem = str(exc)
    if in_ci():
        pytest.fail(f"CI=true and the benchmark data is missing: {problem}", pytrace=False)
    pytest.skip(f"no benchmark data: {problem}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """ONE PostgreSQL server per session (tests/postgres.py); `.database()` gives each test its
    own. Skipped without Debian's binaries, an error under CI=true (install.sh installs them)."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        if in_ci():
            pytest.fail(f"CI=true and PostgreSQL is missing: {exc}", pytrace=False)
        pytest.skip(f"no PostgreSQL: {exc}")
    with server:
        yield server


@pytest.fixture(scope="session")
def tiny_llama_path() -> str:
    return resolve_model("tiny-llama")


@pytest.fixture(scope="session")
def tiny_qwen2_path() -> str:
    return resolve_model("tiny-qwen2")


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    return resolve_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_backend(tiny_llama_path: str):  # type: ignore[no-untyped-def]
    from longhorizon.models.hf import HFBackend

    return HFBackend.from_pretrained(tiny_llama_path)


@pytest.fixture(scope="session")
def tool_caller_path() -> str:
    return resolve_model("tiny-tool-caller")


def require_vllm() -> None:
    """Skip without the vLLM environment; an error under CI=true (install.sh sets it up)."""
    from longhorizon.serving.vllm import default_venv, vllm_available

    if vllm_available():
        return
    problem = f"no vLLM environment at {default_venv()}: run scripts/setup_vllm.sh"
    if in_ci():
        pytest.fail(f"CI=true and {problem}", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """ONE real vLLM (CPU) server on loopback serving SmolLM2-135M in float32, per session."""
    from longhorizon.serving.vllm import VLLMServer

    require_vllm()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    with VLLMServer("smollm2-135m", max_model_len=2048, log_path=log) as server:
        yield server


@pytest.fixture(scope="session")
def vllm_policy_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """ONE vLLM rollout-engine server (weight sync on) for SmolLM2-135M, per session, started
    as a vllm rollout engine starts its own. Every user syncs its weights before sampling."""
    from longhorizon.serving.engine import policy_server
    from longhorizon.serving.options import VLLMEngineConfig

    require_vllm()
    log = tmp_path_factory.mktemp("vllm-policy") / "server.log"
    config = VLLMEngineConfig(max_model_len=2048)
    with policy_server(resolve_model("smollm2-135m"), config, log) as server:
        yield server


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """ONE real Ray cluster per session on 127.0.0.1: 2 CPUs (2 one-CPU workers), a 200 MB
    object store, worker logs kept in Ray's files; its GCS address (`--ray ADDRESS`).
    Skipped where Ray cannot start, an error under CI=true (install.sh installs it)."""
    try:
        import ray

        from longhorizon.scaleout.ray_cluster import connect

        address = connect(None, num_cpus=2)
    except Exception as exc:  # ImportError, or a cluster that cannot start here
        if in_ci():
            pytest.fail(f"CI=true and Ray cannot start: {exc}", pytrace=False)
        pytest.skip(f"Ray cannot start: {type(exc).__name__}: {exc}")
    yield address
    ray.shutdown()


@pytest.fixture(scope="session")
def micro_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished `longhorizon run` of the micro recipe (one SFT step), shared by the tests
    that need a whole run; they read it, or copy it before they write."""
    from tests.viewer_run import micro_run

    return micro_run(tmp_path_factory.mktemp("micro") / "run")
