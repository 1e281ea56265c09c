"""Rate limits and abuse detection: what a user, a zone and an engine may spend.

Token buckets, refilled continuously: "120/minute" allows a burst of 120 and then two a
second. Requests are counted per user, per zone and per engine; LLM tokens (prompt
estimate + max_tokens, settled with the usage the engine reports) per user and per zone.
Override any field with MEGACITY_LIMITS as JSON, e.g. '{"user_requests": "30/minute"}'.

The abuse detector blocks a user for `block_s` after a burst (`burst_requests` within
`burst_window_s`), the same prompt `repeat_prompts` times within `repeat_window_s`, or
`firewall_hits` prompt-firewall hits within `firewall_window_s`; it records why.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from megacity.config.topology import Engine

_RATE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|day)s?\s*$"
)
_UNIT_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600}
_UNIT_S |= {"hour": 3600, "day": 86400}


def parse_rate(text: str) -> tuple[float, float]:
    """ "120/minute" → (120, 60.0): an amount per a number of seconds; ValueError otherwise."""
    match = _RATE.match(text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not a rate like '120/minute', '10/s' or '30/10s'")
    amount = float(match[1])
    seconds = float(match[2] or 1) * _UNIT_S[match[3]]
    if amount <= 0 or seconds <= 0:
        raise ValueError(f"{text!r}: amount and period must be positive")
    return amount, seconds


class LimitsPolicy(BaseModel):
    """Rates as "N/period" strings; an empty string turns that bucket off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    user_requests: str = "120/minute"
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

    @field_validator("user_requests", "zone_requests", "user_llm_tokens", "zone_llm_tokens")
    @classmethod
    def _rate(cls, value: str) -> str:
        if value:
            parse_rate(value)
        return value

    @field_validator("engine_requests")
    @classmethod
    def _rates(cls, value: dict[Engine, str]) -> dict[Engine, str]:
        for rate in value.values():
            if rate:
                parse_rate(rate)
        return value
