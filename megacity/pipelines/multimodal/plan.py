"""Input routing: which scenario a request is, and that scenario's plan.

A plan names the extractors a scenario needs (a failure fails the request) and those it
can use (a failure leaves a `null` and a `degraded` entry), and whether the reasoning
core runs before the accelerator or the accelerator answers alone. Extractors are named
as in the registry (extractors/__init__.py); adding one to a scenario is one entry here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from megacity.errors import BadRequest
from megacity.pipelines.multimodal.request import Scenario, TutorRequest

_DANCE_WORDS = re.compile(r"dance|danc|choreo|춤|안무|댄스|ダンス|舞", re.I)


@dataclass(frozen=True, slots=True)
class Plan:
    """A scenario's extractors, whether the core reasons first, and its prompt strategy."""

    scenario: Scenario
    required: tuple[str, ...]
    optional: tuple[str, ...]
    core: bool
    needs: str  # what the scenario must be sent, for the 400 when it is missing

    @property
    def extractors(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


PLANS: dict[Scenario, Plan] = {
    Scenario.DANCE_COACH: Plan(
        Scenario.DANCE_COACH, ("pose",), ("vision", "face"), True, "a video or a photo"
    ),
    Scenario.DRAMA_COACH: Plan(
        Scenario.DRAMA_COACH, ("speech",), ("prosody", "face", "pose"), True, "a video or audio"
    ),
    Scenario.HOMEWORK: Plan(Scenario.HOMEWORK, ("vision",), (), True, "an image"),
    Scenario.GENERAL: Plan(
        Scenario.GENERAL, (), ("speech", "prosody", "vision", "face"), False, "anything"
    ),
}


def choose(request: TutorRequest) -> Scenario:
    """The scenario of a request: the one asked for, or (`auto`) the one its inputs suggest."""
    if request.scenario is not Scenario.AUTO:
        return request.scenario
    moving = request.video is not None
    # A line to perform makes it drama (its reference, if any, is the actor's reading);
    # a reference without a script is a dance to follow.
    if request.script and (moving or request.audio is not None):
        return Scenario.DRAMA_COACH
    if request.reference_id and (moving or request.images):
        return Scenario.DANCE_COACH
    if request.images and not moving and request.audio is None:
        return Scenario.HOMEWORK
    if (moving or request.images) and _DANCE_WORDS.search(request.text):
        return Scenario.DANCE_COACH
    return Scenario.GENERAL


def plan_for(request: TutorRequest) -> Plan:
    """The plan of the request's scenario; 400 when the scenario's media are missing."""
    plan = PLANS[choose(request)]
    has = {
        Scenario.DANCE_COACH: request.video is not None or bool(request.images),
        Scenario.DRAMA_COACH: request.video is not None or request.audio is not None,
        Scenario.HOMEWORK: bool(request.images),
        Scenario.GENERAL: True,
    }
    if not has[plan.scenario]:
        raise BadRequest(
            f"scenario {plan.scenario.value} needs {plan.needs}",
            code="missing_media",
            param="scenario",
        )
    if plan.scenario is Scenario.DRAMA_COACH and not (request.script or "").strip():
        raise BadRequest(
            "scenario drama_coach needs the `script` (the line performed)",
            code="missing_script",
            param="script",
        )
    return plan
