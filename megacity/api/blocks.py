"""The abuse blocks, for operators: list them, lift one (ai:admin).

* ``GET /api/v1/admin/blocks`` — the blocks in force, the latest-ending first
  (``?user_id=`` narrows to one learner, ``?limit=``)
* ``DELETE /api/v1/admin/blocks/{user}`` — lift the block of a user key as listed
  (``u_…`` a learner, ``s_…`` a service key at one address)
* ``DELETE /api/v1/admin/blocks?user_id=…`` — lift the block of a learner by their id

Blocks live where the detector keeps them (Redis with REDIS_URL: every replica sees the
same list and a lift takes effect on all of them at once). Users appear as keyed hashes,
never as ids; an operator who knows the id passes it and the router hashes it.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from megacity.api.admin import require_admin
from megacity.api.schemas import ERROR_RESPONSES
from megacity.api.services import Services
from megacity.errors import BadRequest, NotFound
from megacity.safety.abuse import AbuseDetector

router = APIRouter(tags=["admin"])
log = logging.getLogger("megacity.admin")

PREFIX = "/api/v1/admin/blocks"
_USER_KEY = re.compile(r"^[us]_[0-9a-f]{20}$")
_USER_ID = r"^[A-Za-z0-9._:@/-]{1,128}$"  # what X-User-Id accepts


class BlockView(BaseModel):
    user: str  # the keyed hash (u_… a learner, s_… a shared caller)
    reason: Literal["burst", "repeated_prompt", "firewall_hits", "manual"]
    detail: str
    scope: Literal["user", "prompt"]
    since: float  # unix seconds
    until: float


class BlockList(BaseModel):
    object: Literal["list"] = "list"
    enabled: bool  # False when abuse detection is off (MEGACITY_LIMITS)
    data: list[BlockView]


class Lifted(BaseModel):
    user: str
    lifted: bool


@router.get(PREFIX, response_model=BlockList, responses=ERROR_RESPONSES)
async def list_blocks(
    request: Request,
    user_id: Annotated[str | None, Query(pattern=_USER_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> BlockList:
    """The blocks in force, the latest-ending first."""
    services, abuse = _begin(request)
    if abuse is None:
        return BlockList(enabled=False, data=[])
    blocks = await abuse.blocks(limit if user_id is None else 1000)
    if user_id is not None:
        wanted = services.hasher(user_id)
        blocks = [b for b in blocks if b.user == wanted][:limit]
    return BlockList(enabled=True, data=[BlockView(**b.as_json()) for b in blocks])


@router.delete(PREFIX, response_model=Lifted, responses=ERROR_RESPONSES)
async def lift_by_id(request: Request, user_id: Annotated[str, Query(pattern=_USER_ID)]) -> Lifted:
    """Lift the block of the learner with this id."""
    services, abuse = _begin(request)
    return await _lift(request, abuse, services.hasher(user_id))


@router.delete(PREFIX + "/{user}", response_model=Lifted, responses=ERROR_RESPONSES)
async def lift(user: str, request: Request) -> Lifted:
    """Lift the block of a user key as the list shows it."""
    _, abuse = _begin(request)
    if not _USER_KEY.match(user):
        raise BadRequest(
            "expected a user key as listed (u_… or s_… and 20 hex digits); "
            "to lift by a learner's id use ?user_id=",
            code="invalid_user_key",
            param="user",
        )
    return await _lift(request, abuse, user)


def _begin(request: Request) -> tuple[Services, AbuseDetector | None]:
    services: Services = request.app.state.services
    require_admin(request, services)
    return services, services.abuse


async def _lift(request: Request, abuse: AbuseDetector | None, user: str) -> Lifted:
    if abuse is None or not await abuse.unblock(user):
        raise NotFound("no block in force for this user", code="block_not_found")
    principal = request.scope["state"].get("principal")
    log.warning(
        "abuse block lifted",
        extra={"user": user, "by": principal.subject if principal else None},
    )
    return Lifted(user=user, lifted=True)
