"""IFEval ``language:response_language``: the whole response in one given language."""

from __future__ import annotations

import random
from typing import ClassVar, Self

from longhorizon.verifiers.ifeval.base import Instruction
from longhorizon.verifiers.ifeval.nlp import detect_language
from longhorizon.verifiers.ifeval.vocab import LANGUAGES


class ResponseLanguage(Instruction):
    """langdetect must identify the response as ``language`` (an ISO 639-1 code)."""

    instruction_id: ClassVar[str] = "language:response_language"
    language: str

    def check(self, response: str) -> bool:
        detected = detect_language(response)
        # langdetect cannot judge text without letters; IFEval gives such responses a pass.
        return detected is None or detected == self.language

    def describe(self) -> str:
        name = LANGUAGES.get(self.language, self.language)
        return f"Your entire response must be written in {name}; no other language is allowed."

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        codes = sorted(code for code in LANGUAGES if code != "en")
        return cls(language=rng.choice(codes))
