"""The retention policy: how long objects of each kind are kept, where, whether backed up.

Configuration only (the sweep lives in megacity.retention). Defaults below; override
any part with MEGACITY_RETENTION as JSON, e.g. '{"audio": {"retention_days": 7}}': the
fields given replace those of that kind's default, the others keep theirs. An unknown
kind or field is an error at start-up, not a silently ignored typo.

| kind       | kept        | why                                                        |
|------------|-------------|------------------------------------------------------------|
| audio      | 30 days     | learners' recordings: scored at once, kept for review      |
| video      | 90 days     | learners' videos (reference videos are kept: referenced)   |
| image      | 90 days     | pictures made per analysis; can be made again              |
| keypoints  | permanent   | reference pose sequences: the dance library itself         |
| attachment | permanent   | exam material, removed with its exam, not by age           |
| profile    | permanent   | a user's picture, removed with the account, not by age     |
| model      | permanent   | model versions in the registry                              |
| generated  | 90 days     | thumbnails and speech the generation jobs made; re-makeable |
| contour    | permanent   | voice references' pitch contours: the song and line library |

A row's own `expires_at` always wins over its kind's retention (see megacity.retention).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

KINDS = (
    "audio", "video", "image", "keypoints", "attachment", "profile", "model", "generated", "contour",
)  # fmt: skip


class RetentionRule(BaseModel):
    """One kind's rule: days kept (None: permanent); location and backup are informational."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retention_days: float | None = Field(default=None, gt=0)
    location: str = ""  # where the objects live (store and key prefix), for operators
    backup: bool = False  # whether the operators back these objects up


def _rule(days: float | None, location: str, backup: bool) -> RetentionRule:
    return RetentionRule(retention_days=days, location=location, backup=backup)


DEFAULT_RULES: dict[str, RetentionRule] = {
    "audio": _rule(30, "object store: kzone/audio/", False),
    "video": _rule(90, "object store: kzone/video/, kzone/dance/references/*/video.*", False),
    "image": _rule(90, "object store: kzone/dance/analyses/", False),
    "keypoints": _rule(None, "object store: kzone/dance/references/*/keypoints.npz", True),
    "attachment": _rule(None, "object store: exams/*/attachments/", True),
    "profile": _rule(None, "object store: users/*/profile/", True),
    "model": _rule(None, "object store: ai-models/", True),
    "generated": _rule(90, "object store: kzone/generated/", False),
    "contour": _rule(None, "object store: kzone/voice/references/*/contour.npz", True),
}


class RetentionPolicy(BaseModel):
    """A rule per object kind (see the module docstring for the defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    audio: RetentionRule = DEFAULT_RULES["audio"]
    video: RetentionRule = DEFAULT_RULES["video"]
    image: RetentionRule = DEFAULT_RULES["image"]
    keypoints: RetentionRule = DEFAULT_RULES["keypoints"]
    attachment: RetentionRule = DEFAULT_RULES["attachment"]
    profile: RetentionRule = DEFAULT_RULES["profile"]
    model: RetentionRule = DEFAULT_RULES["model"]
    generated: RetentionRule = DEFAULT_RULES["generated"]
    contour: RetentionRule = DEFAULT_RULES["contour"]

    @model_validator(mode="before")
    @classmethod
    def _merge_with_defaults(cls, data: Any) -> Any:
        """A partial rule ({"retention_days": 7}) keeps the default's other fields."""
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for kind, value in data.items():
            if kind in DEFAULT_RULES and isinstance(value, dict):
                merged[kind] = {**DEFAULT_RULES[kind].model_dump(), **value}
        return merged

    def rule(self, kind: str) -> RetentionRule | None:
        """The rule of `kind`; None for a kind this policy does not know (kept)."""
        if kind not in KINDS:
            return None
        rule: RetentionRule = getattr(self, kind)
        return rule
