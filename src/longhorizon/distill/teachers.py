"""The teacher registry: one teacher per domain label (hard routing), checked at start."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel

from longhorizon.models.registry import resolve_model
from longhorizon.models.types import Backend


class TeacherSpec(BaseModel):
    """A domain's teacher: an in-process checkpoint (`hf`) or a server with prompt scoring."""

    domain: str
    model: str
    backend: Literal["hf", "openai"] = "hf"
    base_url: str | None = None
    tokenizer: str | None = None  # for `openai`: a local tokenizer dir (defaults to `model`)


class TeacherError(ValueError):
    """A teacher set that cannot serve the data: a missing domain or a different tokenizer."""


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Vocabulary and special tokens: equal fingerprints mean equal token ids."""
    vocab = sorted(tokenizer.get_vocab().items())
    special = sorted(map(str, tokenizer.all_special_tokens))
    return hashlib.sha256(json.dumps([vocab, special]).encode()).hexdigest()[:16]


def open_teacher(spec: TeacherSpec) -> Backend:
    if spec.backend == "hf":
        from longhorizon.models.hf import HFBackend

        return HFBackend.from_pretrained(resolve_model(spec.model))
    from longhorizon.models.openai_backend import OpenAIBackend

    if spec.base_url is None:
        raise TeacherError(f"teacher for {spec.domain!r}: an openai teacher needs base_url")
    tokenizer = spec.tokenizer or resolve_model(spec.model)
    return OpenAIBackend(spec.base_url, model=spec.model, tokenizer=tokenizer)


class TeacherRegistry:
    """domain -> teacher backend. Sample i of domain d_i is scored by teacher(d_i) only."""

    def __init__(self, teachers: dict[str, Backend]) -> None:
        self.teachers = teachers

    @classmethod
    def open(cls, specs: list[TeacherSpec]) -> TeacherRegistry:
        duplicate = sorted(
            {s.domain for s in specs if [t.domain for t in specs].count(s.domain) > 1}
        )
        if duplicate:
            raise TeacherError(f"more than one teacher for domain(s) {duplicate}")
        return cls({spec.domain: open_teacher(spec) for spec in specs})

    def check(self, domains: set[str], student_tokenizer: Any) -> None:
        """Fail before any work if a domain has no teacher or a tokenizer differs."""
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

    def __getitem__(self, domain: str) -> Backend:
        return self.teachers[domain]

    async def aclose(self) -> None:
        for teacher in self.teachers.values():
            await teacher.aclose()
