"""Domain exceptions; the API turns each into the one OpenAI-style error envelope."""

from __future__ import annotations

import math
from typing import Any


class MegaCityError(Exception):
    """Base of every error the service reports to a client."""

    status: int = 500
    type: str = "server_error"
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra

    def envelope(self) -> dict[str, Any]:
        """The JSON body: {"error": {"message", "type", "code", "param", ...}}."""
        body: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
            "param": self.param,
        }
        body.update(self.extra)
        return {"error": body}


class BadRequest(MegaCityError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class Unauthorized(MegaCityError):
    status = 401
    type = "authentication_error"
    code = "unauthorized"


class Forbidden(MegaCityError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(MegaCityError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class PayloadTooLarge(MegaCityError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class UnsupportedMediaType(MegaCityError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class UnprocessableEntity(MegaCityError):
    """Well-formed request whose content cannot be used (audio too long, undecodable)."""

    status = 422
    type = "invalid_request_error"
    code = "unprocessable"


class ServiceUnavailable(MegaCityError):
    """No node can take the request now (all down, or all full); carries Retry-After."""

    status = 503
    type = "service_unavailable"
    code = "no_capacity"

    def __init__(self, message: str, *, retry_after_s: int = 1, **kwargs: Any) -> None:
        headers = {"Retry-After": str(retry_after_s), **kwargs.pop("headers", {})}
        super().__init__(message, headers=headers, **kwargs)


class UpstreamError(MegaCityError):
    """The engine node failed (connection error, 5xx, broken stream)."""

    status = 502
    type = "upstream_error"
    code = "upstream_failed"


class UpstreamTimeout(MegaCityError):
    status = 504
    type = "upstream_error"
    code = "upstream_timeout"


def from_envelope(status: int, body: object) -> MegaCityError:
    """Rebuild a node's enveloped 4xx so the router can pass it to its client unchanged."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"message": f"the engine node refused the request (HTTP {status})"}
    exc = MegaCityError(
        str(error.get("message") or f"HTTP {status}"),
        code=str(error.get("code") or f"http_{status}"),
        param=error.get("param") if isinstance(error.get("param"), str) else None,
    )
    exc.status = status
    exc.type = str(error.get("type") or "invalid_request_error")
    return exc


class TooManyRequests(MegaCityError):
    """A rate limit or a temporary abuse block; carries Retry-After (whole seconds)."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float, **kwargs: Any) -> None:
        seconds = max(1, math.ceil(retry_after_s)) if math.isfinite(retry_after_s) else 3600
        headers = {"Retry-After": str(seconds), **kwargs.pop("headers", {})}
        super().__init__(message, headers=headers, **kwargs)


class ContentRejected(MegaCityError):
    """The safety layer refused the text (prompt firewall, moderation, protected identity)."""

    status = 400
    type = "invalid_request_error"
    code = "content_rejected"
