"""The tutor's LLM calls: JSON out (guided decoding where the server has it), checked here.

Every step asks for ``response_format: {"type": "json_schema", …}`` — vLLM and SGLang
constrain decoding to the schema; servers without guided decoding ignore it and the
prompt's own description of the JSON has to do. Either way the answer is parsed and
validated against the pydantic model here; a caller treats `None` as "invalid" and
falls back to the deterministic composer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from megacity.errors import UpstreamError
from megacity.routing.context import RequestContext
from megacity.routing.gateway import LLMGateway
from megacity.routing.selector import Decision

M = TypeVar("M", bound=BaseModel)
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.I)


def json_format(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAI ``response_format`` asking for `model`'s JSON schema."""
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": model.model_json_schema(), "strict": True},
    }


def parse_json(text: str, model: type[M]) -> M | None:
    """`text` as an instance of `model` (code fences and prose around one object tolerated)."""
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        return model.model_validate(orjson.loads(body[start : end + 1]))
    except (orjson.JSONDecodeError, ValidationError, ValueError):
        return None


async def complete(
    llm: LLMGateway,
    ctx: RequestContext,
    decision: Decision,
    payload: dict[str, Any],
    started: float,
) -> tuple[str, dict[str, Any] | None]:
    """One non-streamed chat: the answer's text and the usage the node reported."""
    answer = await llm.chat_as(ctx, decision, {**payload, "stream": False}, started)
    if answer.status != 200:
        raise UpstreamError(
            f"the model server for {decision.model.name!r} refused the request"
            f" (HTTP {answer.status})",
            code="llm_refused",
        )
    try:
        body = orjson.loads(answer.body)
        message = body["choices"][0]["message"]
        text = message.get("content") or ""
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        raise UpstreamError(
            f"the model server for {decision.model.name!r} answered no chat completion",
            code="llm_invalid_answer",
        ) from None
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
    return str(text), usage


async def stream(
    llm: LLMGateway,
    ctx: RequestContext,
    decision: Decision,
    payload: dict[str, Any],
    started: float,
    usage: list[dict[str, Any]],
) -> AsyncGenerator[str, None]:
    """A streamed chat's text deltas, as they arrive; the reported usage lands in `usage`."""
    body = {**payload, "stream": True, "stream_options": {"include_usage": True}}
    answer = await llm.chat_as(ctx, decision, body, started)
    if answer.chunks is None:
        raise UpstreamError(
            f"the model server for {decision.model.name!r} did not stream (HTTP {answer.status})",
            code="llm_refused",
        )
    chunks = answer.chunks
    try:
        async for chunk in chunks:
            for line in chunk.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]" or not data:
                    continue
                try:
                    event = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(event, dict):
                    continue
                if "error" in event:
                    raise UpstreamError(
                        "the model server broke the stream", code="llm_stream_broken"
                    )
                if isinstance(event.get("usage"), dict):
                    usage.append(event["usage"])
                for choice in event.get("choices") or ():
                    delta = (choice or {}).get("delta") or {}
                    if isinstance(delta.get("content"), str) and delta["content"]:
                        yield delta["content"]
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()  # releases the node (and stops its generation when cut short)
