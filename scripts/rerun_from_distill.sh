#!/usr/bin/env bash
# Rerun a finished run's distill, eval and report stages under another recipe, reusing its
# synthesis, SFT student and teachers (a copy: the source run is left as it is).
#   scripts/rerun_from_distill.sh SOURCE_RUN NEW_RECIPE.yaml
# NEW_RECIPE must differ from the source's recipe only in `distill` (and `name`/`out`); its
# `out` is where the copy goes. Used for the domain-weight comparison in results/.
set -euo pipefail
src="$1"
recipe="$2"
out="$(.venv/bin/python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["out"])' "$recipe")"
[[ -d "$src/sft/final" && -d "$src/teachers" ]] || { echo "no finished SFT and teachers in $src" >&2; exit 2; }
[[ ! -e "$out" ]] || { echo "$out exists: remove it or pick another out" >&2; exit 2; }
mkdir -p "$out"
cp -r "$src/synth" "$src/sft" "$src/teachers" "$out/"
mkdir -p "$out/eval"
for d in "$src"/eval/*; do
    [[ "$(basename "$d")" == distilled ]] || cp -r "$d" "$out/eval/"
done
.venv/bin/python - "$src/stages.json" "$out/stages.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
data["stages"] = {k: v for k, v in data["stages"].items() if k in ("synth", "sft", "teachers")}
json.dump(data, open(sys.argv[2], "w"), indent=2)
PY
.venv/bin/longhorizon run "$recipe"
