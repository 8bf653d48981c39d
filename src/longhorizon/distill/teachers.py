"""The teacher registry: one teacher per domain label (hard routing), checked at start.

An `hf` teacher runs in this process and can score any id (full logprobs, the student's top-k);
an `openai` teacher (vLLM `prompt_logprobs`) returns only its own top-k at each position.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from longhorizon.distill.config import ARBITRARY_ID_KINDS, TeacherSpec
from longhorizon.models.hf import HFBackend
from longhorizon.models.openai_backend import OpenAIBackend
from longhorizon.models.registry import resolve_model
from longhorizon.models.types import Backend

__all__ = [
    "TeacherError",
    "TeacherRegistry",
    "TeacherSpec",
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
        return HFBackend.from_pretrained(resolve_model(spec.model))
    if spec.base_url is None:
        raise TeacherError(f"teacher for {spec.domain!r}: an openai teacher needs base_url")
    tokenizer = spec.tokenizer or resolve_model(spec.model)
    return OpenAIBackend(spec.base_url, model=spec.model, tokenizer=tokenizer)


class TeacherRegistry:
    """domain -> teacher backend. Sample i of domain d_i is scored by teacher(d_i) only."""

    def __init__(self, teachers: dict[str, Backend]) -> None:
        self.teachers = teachers

    @classmethod
    def open(cls, specs: list[TeacherSpec] | tuple[TeacherSpec, ...]) -> TeacherRegistry:
        domains = [s.domain for s in specs]
        duplicate = sorted({d for d in domains if domains.count(d) > 1})
        if duplicate:
            raise TeacherError(f"more than one teacher for domain(s) {duplicate}")
        return cls({spec.domain: open_teacher(spec) for spec in specs})

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
        for teacher in self.teachers.values():
            await teacher.aclose()
