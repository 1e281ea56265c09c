"""The multimodal tutor: voice, motion, face, vision and text → one structured, streamed feedback.

Stages, one module each: request (what was sent), plan (input routing), extractors/ and
extract (parallel extraction), fuse (the features document), reason (the LLM core and
accelerator), compose (the answer, deterministic fallback included), guarding (the LLM
guard around a request), tutor (the six steps in order), events (the stream), job (long
videos), cache (features by media hash), voice (the spoken summary).

Only the request types are exported here: the rest loads numpy, PyAV and the engines,
which a router loads with its first multimodal request (import `….tutor` for them).
"""

from megacity.pipelines.multimodal.request import MULTIMODAL, Media, Scenario, TutorRequest

__all__ = ["MULTIMODAL", "Media", "Scenario", "TutorRequest"]
