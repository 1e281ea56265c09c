"""Where a job came from: the request context a job runs with, kept in its payload."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from megacity.routing.context import RequestContext


class JobOrigin(BaseModel):
    """Who submitted a job, from which zone and region, under which request id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(max_length=200)
    zone: str | None = None
    region: str | None = None
    user_id: str | None = None

    @staticmethod
    def fields_of(ctx: RequestContext) -> dict[str, Any]:
        """The origin fields of a request, for building a payload."""
        return {
            "request_id": ctx.request_id,
            "zone": ctx.zone,
            "region": ctx.region,
            "user_id": ctx.user_id,
        }

    def context(self, locale: str | None = None) -> RequestContext:
        return RequestContext(
            request_id=self.request_id,
            zone=self.zone,
            locale=locale,
            user_id=self.user_id,
            region=self.region,
        )
