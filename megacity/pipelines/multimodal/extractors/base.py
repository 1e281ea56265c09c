"""The extractor protocol: one engine's signal for the tutor, and how it turns into findings.

An extractor is a small class with a `name` (what plans call it), a pydantic `features`
model (its part of the fused document), and three methods:

* ``applies(request)``: whether the request carries what it reads (a video, a photo …);
* ``extract(job)``: the features, from its engine; raise `Unavailable` when the media holds
  no usable signal (no face, no person), let engine errors through — the runner turns
  both into a `degraded` entry for an optional extractor, or the request's error for a
  required one;
* ``findings(features)``: scores and anchored points for the deterministic composer.

Extractors get their engines through `Tools`, built once by the tutor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from megacity.config.multimodal import MultimodalPolicy
from megacity.pipelines.multimodal.findings import Findings
from megacity.pipelines.multimodal.request import Scenario, TutorRequest
from megacity.routing.context import RequestContext

if TYPE_CHECKING:
    from megacity.pipelines.dance import DanceLab
    from megacity.pipelines.voice_references import VoiceReferences
    from megacity.prompts.library import StrategyLibrary
    from megacity.routing.face import FaceGateway
    from megacity.routing.gateway import LLMGateway
    from megacity.routing.pose import PoseGateway
    from megacity.routing.selector import ModelSelector
    from megacity.routing.speech import SpeechGateway


class Unavailable(Exception):
    """The media holds no usable signal for this extractor (reason: a short code)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Tools:
    """The engines and settings extractors use (built once per router)."""

    selector: ModelSelector
    speech: SpeechGateway
    pose: PoseGateway
    dance: DanceLab
    face: FaceGateway
    llm: LLMGateway
    prompts: StrategyLibrary
    policy: MultimodalPolicy
    max_pixels: int
    voices: VoiceReferences | None = None  # voice references, for prosody against one
    max_audio_s: float = 600.0  # the longest audio prosody tracks (MEGACITY_SPEECH_MAX_AUDIO_S)


@dataclass
class Job:
    """One extraction: who asks, what was sent, the scenario, and the LLM usage it spends."""

    ctx: RequestContext
    request: TutorRequest
    scenario: Scenario
    started: float  # perf_counter() of the request
    usage: list[dict[str, Any]] = field(default_factory=list)


class Extractor(ABC):
    """One signal of the tutor (see the module docstring)."""

    name: ClassVar[str]
    features: ClassVar[type[BaseModel]]

    def __init__(self, tools: Tools) -> None:
        self.tools = tools

    @abstractmethod
    def applies(self, request: TutorRequest) -> bool:
        """Whether the request carries what this extractor reads."""

    @abstractmethod
    async def extract(self, job: Job) -> BaseModel:
        """The features (an instance of `features`); see the module docstring for failures."""

    @abstractmethod
    def findings(self, features: Any) -> Findings:
        """Scores and anchored points for the deterministic composer."""
