"""Rate limits and abuse detection: what a user, a zone and an engine may spend.

Token buckets, refilled continuously: "120/minute" allows a burst of 120 and then two a
second. Requests are counted per user, per zone and per engine; LLM tokens (prompt
estimate + max_tokens, settled with the usage the engine reports) per user and per zone.
Override any field with MEGACITY_LIMITS as JSON, e.g. '{"user_requests": "30/minute"}'.

The abuse detector blocks a user for `block_s` after a burst (more than `burst_requests`
within `burst_window_s`) or more than `firewall_hits` prompt-firewall hits within
`firewall_window_s`, and records why. The same prompt more than `repeat_prompts` times
within `repeat_window_s` is only throttled: that prompt is refused for
`repeat_throttle_s` (a short 429 with Retry-After), the user's other requests pass.

A service API key without X-User-Id (and, with auth off, a client without one) acts for
people it does not name: it is limited per key and client address at `service_requests`
and `service_llm_tokens`, and never blocked for bursts or firewall hits.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from megacity.config.topology import Engine
from megacity.safety.ratelimit import Rate


class LimitsPolicy(BaseModel):
    """Rates as "N/period" strings; an empty string turns that bucket off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    user_requests: str = "120/minute"
    service_requests: str = "1200/minute"  # per key and client address, no X-User-Id
    zone_requests: str = "6000/minute"
    engine_requests: dict[Engine, str] = Field(
        default_factory=lambda: {
            Engine.LLM: "6000/minute",
            Engine.SPEECH: "1200/minute",
            Engine.POSE: "300/minute",
            Engine.IMAGE: "300/minute",
            Engine.TTS: "600/minute",
        }
    )
    user_llm_tokens: str = "60000/minute"
    service_llm_tokens: str = "600000/minute"
    zone_llm_tokens: str = "3000000/minute"
    default_max_tokens: int = Field(default=512, ge=1)  # charged when a request names none
    fail_open: bool = True  # when Redis is down, let requests through (and log)

    burst_requests: int = Field(default=60, ge=1)
    burst_window_s: float = Field(default=10.0, gt=0)
    repeat_prompts: int = Field(default=8, ge=2)
    repeat_window_s: float = Field(default=60.0, gt=0)
    firewall_hits: int = Field(default=3, ge=1)
    firewall_window_s: float = Field(default=600.0, gt=0)
    block_s: float = Field(default=900.0, gt=0)
    repeat_throttle_s: float = Field(default=10.0, gt=0)

    @field_validator(
        "user_requests",
        "service_requests",
        "zone_requests",
        "user_llm_tokens",
        "service_llm_tokens",
        "zone_llm_tokens",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        if value:
            Rate.parse(value)
        return value

    @field_validator("engine_requests")
    @classmethod
    def _rates(cls, value: dict[Engine, str]) -> dict[Engine, str]:
        for rate in value.values():
            if rate:
                Rate.parse(rate)
        return value
