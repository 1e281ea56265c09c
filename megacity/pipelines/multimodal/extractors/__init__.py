"""The tutor's extractors, by the name plans use (plan.py).

To add one: write its module here — a subclass of `Extractor` with a
name, a pydantic `features` model, `applies`, `extract` and `findings` — add its class to
`EXTRACTORS`, and name it in the plans of the scenarios that should use it.
"""

from __future__ import annotations

from megacity.pipelines.multimodal.extractors.base import Extractor, Job, Tools, Unavailable
from megacity.pipelines.multimodal.extractors.face import FaceExtractor
from megacity.pipelines.multimodal.extractors.pose import PoseExtractor
from megacity.pipelines.multimodal.extractors.prosody import ProsodyExtractor
from megacity.pipelines.multimodal.extractors.speech import SpeechExtractor
from megacity.pipelines.multimodal.extractors.vision import VisionExtractor

EXTRACTORS: tuple[type[Extractor], ...] = (
    SpeechExtractor,
    ProsodyExtractor,
    PoseExtractor,
    FaceExtractor,
    VisionExtractor,
)


def build_extractors(tools: Tools) -> dict[str, Extractor]:
    """One instance of every extractor, by name."""
    return {cls.name: cls(tools) for cls in EXTRACTORS}


__all__ = ["EXTRACTORS", "Extractor", "Job", "Tools", "Unavailable", "build_extractors"]
