"""Per-request routing context, read from the X-* headers by the API layer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asks and from where: zone, locale, user, region, prompt strategy, request id."""

    request_id: str
    zone: str | None = None
    locale: str | None = None
    user_id: str | None = None
    region: str | None = None
    strategy: str | None = None
    session_id: str | None = None  # X-Session-Id: keeps a conversation on one node
