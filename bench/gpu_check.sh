#!/usr/bin/env bash
# The GPU check: at most 8 minutes on one CUDA GPU with the project installed
# (`bash scripts/install.sh`, or any env where `python -m longhorizon.cli.main` runs).
#
#   1. bench/sva_loss.py --device cuda --dtype bfloat16: SVA against the chunked and the
#      materialised full-vocabulary loss (writes bench/results/sva_loss-cuda.json);
#   2. one OPD step: SmolLM2-135M student and teacher on the GPU (teacher in bf16);
#   3. one GRPO step: SmolLM2-135M policy on the GPU;
# then bench/results/gpu_check.json: the GPU, each step's exit code, seconds and its last
# metrics record. Every step has its own time limit, so a hung step cannot eat the others'.
#
# Usage: bash bench/gpu_check.sh [--dry-run]
#   PYTHON=... picks the interpreter, OUT=DIR where the JSON goes (default bench/results);
#   --dry-run only validates the OPD and GRPO configs (no GPU needed).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
RESULTS=${OUT:-bench/results}
WORK=$(mktemp -d)
DRY=${1:-}
mkdir -p "$RESULTS"
: > "$WORK/steps.tsv"

if [[ "$DRY" != "--dry-run" ]] && ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: torch sees no CUDA device; nothing was run" >&2
    exit 2
fi

step() {  # step NAME SECONDS CMD...: run CMD under a limit, log it, record rc and seconds
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" > "$WORK/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" >> "$WORK/steps.tsv"
    tail -n 25 "$WORK/$name.log"
}

if [[ "$DRY" == "--dry-run" ]]; then
    mkdir -p "$WORK/synth/tasks"
else
    step sva_loss 200 "$PY" bench/sva_loss.py --device cuda --dtype bfloat16 --repeats 2
    cp bench/results/sva_loss-cuda.json "$RESULTS/" 2>/dev/null
    step synth 60 "$PY" -m longhorizon.cli.main synth --domain instruction --n 16 --out "$WORK/synth"
fi

cat > "$WORK/opd.yaml" <<EOF
model: smollm2-135m
teachers: [{domain: instruction, model: smollm2-135m, dtype: bfloat16, device: cuda}]
tasks: [$WORK/synth/tasks]
output_dir: $WORK/opd
steps: 1
micro_batch_size: 8
loss: {kind: sva_tail, k: 64}
rollout: {prompts_per_step: 8, concurrency: 8, temperature: 1.0, max_turns: 1, max_tokens: 256}
tensorboard: false
EOF
step opd 120 "$PY" -m longhorizon.cli.main distill --config "$WORK/opd.yaml" $DRY

cat > "$WORK/rl.yaml" <<EOF
model: smollm2-135m
tasks: [$WORK/synth/tasks]
output_dir: $WORK/rl
steps: 1
lr: 1.0e-6
micro_batch_size: 8
rollout: {prompts_per_step: 4, group_size: 4, max_tries: 1, dynamic_sampling: false,
          concurrency: 16, max_turns: 1, max_tokens: 256}
tensorboard: false
EOF
step grpo 120 "$PY" -m longhorizon.cli.main rl --config "$WORK/rl.yaml" $DRY
if [[ "$DRY" == "--dry-run" ]]; then
    cat "$WORK/steps.tsv"
    ! grep -qv $'\t0\t' "$WORK/steps.tsv"  # every config valid
    exit
fi

"$PY" - "$WORK" "$RESULTS" <<'EOF'
import json, subprocess, sys
from pathlib import Path

work, results = Path(sys.argv[1]), Path(sys.argv[2])
gpu = subprocess.run(
    ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
    capture_output=True, text=True,
).stdout.strip()
steps = {}
dirs = {"opd": "opd", "grpo": "rl"}  # the steps that train, and their output dirs
for line in (work / "steps.tsv").read_text().splitlines():
    name, rc, seconds = line.split("\t")
    metrics = work / dirs.get(name, name) / "metrics.jsonl"
    records = [json.loads(r) for r in metrics.read_text().splitlines()] if metrics.exists() else []
    steps[name] = {"rc": int(rc), "seconds": round(float(seconds), 1),
                   "last_metrics": records[-1] if records else None}
payload = {"bench": "gpu_check", "gpu": gpu, "steps": steps,
           "passed": all(s["rc"] == 0 for s in steps.values())}
(results / "gpu_check.json").write_text(json.dumps(payload, indent=2) + "\n")
print(json.dumps({k: (v["rc"], v["seconds"]) for k, v in steps.items()}))
print("wrote", results / "gpu_check.json")
EOF
