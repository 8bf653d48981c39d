"""The teacher registry: one teacher per domain label and the routing of samples to them.

Hard routing (the spec): a sample of domain d is scored by teacher(d) only. Soft routing: by a
mixture of teachers, p_mix(u) = sum_j w_j p_j(u), with the weights of its domain. Domains whose
specs name the same model share one backend (a generalist teacher is loaded once).

An `hf` teacher runs in this process and can score any id (full logprobs, the student's top-k);
an `openai` teacher (vLLM `prompt_logprobs`) returns only its own top-k at each position, so it
cannot take part in a mixture (checked at start).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from longhorizon.distill.config import ARBITRARY_ID_KINDS, TeacherSpec
from longhorizon.models.hf import HFBackend
from longhorizon.models.openai_backend import OpenAIBackend
from longhorizon.models.registry import resolve_model
from longhorizon.models.types import Backend

__all__ = [
    "TeacherError",
    "TeacherRegistry",
    "TeacherSpec",
    "open_frozen",
    "open_teacher",
    "tokenizer_fingerprint",
]


class TeacherError(ValueError):
    """A teacher set that cannot serve the run: a missing domain, a different tokenizer, or a
    loss kind the teacher cannot score."""


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Vocabulary and special tokens: equal fingerprints mean equal token ids."""
    vocab = sorted(tokenizer.get_vocab().items())
    special = sorted(map(str, tokenizer.all_special_tokens))
    return hashlib.sha256(json.dumps([vocab, special]).encode()).hexdigest()[:16]


def open_teacher(spec: TeacherSpec) -> Backend:
    if spec.backend == "hf":
        return open_frozen(resolve_model(spec.model), spec.dtype, spec.device)
    if spec.base_url is None:
        raise TeacherError(f"teacher for {spec.domain!r}: an openai teacher needs base_url")
    tokenizer = spec.tokenizer or resolve_model(spec.model)
    return OpenAIBackend(spec.base_url, model=spec.model, tokenizer=tokenizer)


def open_frozen(path: str, dtype: str = "auto", device: str = "auto") -> HFBackend:
    """An in-process teacher loaded in `dtype` on `device`, with no gradient: a frozen teacher
    holds one copy of its weights. Not in float32, its dtype joins its id (the score cache's
    key). auto: the GPU when there is one (bfloat16 there), else the CPU in float32."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    backend = HFBackend.from_pretrained(path, device=device, dtype=dtype)
    backend.model.requires_grad_(False)
    loaded = next(backend.model.parameters()).dtype
    if loaded != torch.float32:
        backend.model_id = f"{path}@{str(loaded).removeprefix('torch.')}"
    return backend


Mixtures = dict[str, dict[str, float]]  # sample domain -> {teacher domain: weight > 0}


class TeacherRegistry:
    """domain -> teacher backend, and the routing: without `mixtures` (hard), sample i of
    domain d_i is scored by teacher(d_i) only; with them (soft), by the mixture of its domain."""

    def __init__(self, teachers: dict[str, Backend], mixtures: Mixtures | None = None) -> None:
        self.teachers = teachers
        self.mixtures = mixtures

    @classmethod
    def open(
        cls, specs: list[TeacherSpec] | tuple[TeacherSpec, ...], mixtures: Mixtures | None = None
    ) -> TeacherRegistry:
        domains = [s.domain for s in specs]
        duplicate = sorted({d for d in domains if domains.count(d) > 1})
        if duplicate:
            raise TeacherError(f"more than one teacher for domain(s) {duplicate}")
        opened: dict[tuple[str, ...], Backend] = {}
        teachers = {}
        for spec in specs:
            same: tuple[str, ...] = (spec.model, spec.backend, str(spec.base_url))
            same += (str(spec.tokenizer), spec.dtype, spec.device)
            if same not in opened:
                opened[same] = open_teacher(spec)
            teachers[spec.domain] = opened[same]
        return cls(teachers, mixtures)

    def mixture(self, domain: str) -> dict[str, float] | None:
        """Teacher domain -> weight for samples of `domain` (soft routing); None: hard."""
        return None if self.mixtures is None else self.mixtures[domain]

    def name(self, domain: str) -> str:
        """What scores samples of `domain`: the teacher's model id, or the mixture's
        `mix(id:weight,...)` (cache keys and the token monitor log use it)."""
        mix = self.mixture(domain)
        if mix is None:
            return self.teachers[domain].model_id
        return "mix(" + ",".join(f"{self.teachers[d].model_id}:{w!r}" for d, w in mix.items()) + ")"

    def check(self, domains: set[str], student_tokenizer: Any, kind: str = "sva") -> None:
        """Fail before any work if a domain has no teacher, a tokenizer differs, or a teacher
        cannot supply what the loss kind needs."""
        missing = sorted(domains - set(self.teachers))
        if missing:
            raise TeacherError(
                f"no teacher for domain(s) {missing}; teachers: {sorted(self.teachers)}"
            )
        student = tokenizer_fingerprint(student_tokenizer)
        for domain, teacher in self.teachers.items():
            if teacher.tokenizer is None:
                raise TeacherError(f"teacher for {domain!r} has no local tokenizer to compare")
            if tokenizer_fingerprint(teacher.tokenizer) != student:
                raise TeacherError(
                    f"teacher for {domain!r} ({teacher.model_id}) uses a different tokenizer "
                    "from the student's: its token ids would not line up"
                )
            self._check_kind(domain, teacher, kind)
        if self.mixtures is not None:
            self._check_mixtures(domains)

    def _check_mixtures(self, domains: set[str]) -> None:
        assert self.mixtures is not None
        for domain in sorted(domains):
            mix = self.mixtures.get(domain)
            if not mix:
                raise TeacherError(f"soft routing: no teacher mixture for domain {domain!r}")
            unknown = sorted(set(mix) - set(self.teachers))
            if unknown:
                raise TeacherError(f"soft routing of {domain!r}: no teacher for {unknown}")
            served = sorted(d for d in mix if self.in_process(d) is None)
            if served:
                raise TeacherError(
                    f"soft routing of {domain!r} mixes served teacher(s) {served}: a mixture "
                    "needs each teacher's full distribution, which only an in-process teacher "
                    "(backend: hf) gives"
                )

    @staticmethod
    def _check_kind(domain: str, teacher: Backend, kind: str) -> None:
        need = ARBITRARY_ID_KINDS.get(kind)
        if need is None or isinstance(teacher, HFBackend):
            return
        raise TeacherError(
            f"loss kind {kind!r} needs {need}, but the teacher for {domain!r} "
            f"({teacher.name} backend, {teacher.model_id}) is served: prompt_logprobs returns only "
            "the teacher's own top-k per position and cannot score other ids. Use an in-process "
            "teacher (backend: hf) or a kind that needs only the teacher's top-k (sva, sva_tail, "
            "sampled_token)"
        )

    def in_process(self, domain: str) -> HFBackend | None:
        """The teacher's in-process backend, or None for a served teacher."""
        teacher = self.teachers[domain]
        return teacher if isinstance(teacher, HFBackend) else None

    def __getitem__(self, domain: str) -> Backend:
        return self.teachers[domain]

    async def aclose(self) -> None:
        unique = {id(t): t for t in self.teachers.values()}  # shared backends close once
        for teacher in unique.values():
            await teacher.aclose()
