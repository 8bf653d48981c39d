"""The visit summariser's options, shared by `synth`, `rollout` and `eval`."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from longhorizon.serving.summariser import SummariserConfig

__all__ = ["SUMMARISER", "SUMMARISER_BACKEND", "SUMMARISER_URL", "cli_summariser"]

SUMMARISER = typer.Option(
    None,
    "--summariser",
    help="model that visit asks to answer its goal over the page (default: none, the page)",
)
SUMMARISER_BACKEND = typer.Option(
    None, "--summariser-backend", help="hf (default), openai (--summariser-url) or vllm"
)
SUMMARISER_URL = typer.Option(None, "--summariser-url", help="the summariser server's /v1 URL")


def cli_summariser(
    model: str | None, backend: str | None, base_url: str | None
) -> SummariserConfig | None:
    """The summariser the flags name (None without --summariser); a bad one is a usage error."""
    if model is None:
        if backend is not None or base_url is not None:
            raise typer.BadParameter("--summariser-backend and --summariser-url need --summariser")
        return None
    try:
        return SummariserConfig.model_validate(
            {"model": model, "backend": backend or "hf", "base_url": base_url}
        )
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"], param_hint="--summariser") from None
