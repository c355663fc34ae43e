"""The evaluation's settings: the service's, plus the judge."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from service.settings import Settings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JudgeSettings(_Section):
    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible endpoint of the evaluation judge (e.g. "
        "https://host/v1); unset means the local packaged model.",
    )
    model: str | None = Field(default=None, description="Model name sent to that endpoint.")
    api_key: SecretStr | None = Field(default=None, description="Key for that endpoint.")
    timeout_s: float = Field(
        default=120.0, gt=0, le=3600, description="Time allowed per judgement."
    )
    max_tokens: int = Field(default=600, ge=16, le=8192, description="Longest judgement.")
    batch: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description="Judgements asked at once. An endpoint is sent them concurrently "
        "(default 4). The local judge decodes them together in one llama.cpp context "
        "(default 1): a little faster, but a verdict near a tie can come out otherwise, so "
        "a batched local judge is a judge of its own (its own cache entries; compared with "
        "a baseline on the unjudged metrics only).",
    )

    def concurrency(self) -> int:
        """Judgements asked at once, by default 4 for an endpoint and 1 for the local judge."""
        if self.batch is not None:
            return self.batch
        return 4 if self.base_url else 1

    cache_path: Path = Field(
        default=Path(".memoqa/judge-cache.sqlite"),
        description="Judgements cached by their inputs, so a re-run only judges what changed.",
    )
    kept_path: Path | None = Field(
        default=Path(__file__).parent / "judgements.jsonl",
        description="Judgements kept with the baseline (read before the cache; written by "
        "`memoqa eval --update-baseline`), so a fresh clone judges only what changed.",
    )


class EvalSettings(Settings):
    """The service's settings and the judge's."""

    judge: JudgeSettings = Field(default_factory=JudgeSettings)


def get_settings(**overrides: object) -> EvalSettings:
    """Settings from the environment, with keyword overrides on top."""
    return EvalSettings(**overrides)  # type: ignore[arg-type]
