"""Request and response schemas of the feedback, bias-report and consent endpoints.

Request bodies forbid unknown fields and take no free text except a consent's
``evidence`` (a form reference, printable characters only): feedback buckets are
coarse, fixed lists, so nothing identifying slips into the feedback table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, field_validator

SAFE_ID = r"^[A-Za-z0-9._:@/-]{1,128}$"  # the same characters as the X-* headers
ZONE_ID = SAFE_ID
MAX_CONSENT_DAYS = 5 * 366  # five years, counting leap days

EngineName = Literal[
    "llm", "speech", "pose", "image", "tts", "vision", "face"
]  # config.topology.Engine
AgeBand = Literal["under-10", "10-12", "13-15", "16-18", "19-24", "25-39", "40-64", "65+"]
Gender = Literal["female", "male", "nonbinary", "undisclosed"]
Scope = Literal["voice_clone", "voice_synthesis", "face_synthesis"]  # db.consents.SCOPES
ConsentStatus = Literal["active", "revoked", "expired"]
AGE_BANDS: tuple[str, ...] = get_args(AgeBand)
GENDERS: tuple[str, ...] = get_args(Gender)


class FeedbackCreate(BaseModel):
    """POST /api/v1/ai/feedback: was this AI result right? Every bucket is optional."""

    model_config = ConfigDict(extra="forbid")

    result_id: str = Field(pattern=SAFE_ID, description="the job or answer judged")
    is_correct: StrictBool
    engine: EngineName | None = None
    age_band: AgeBand | None = None
    l1_language: str | None = Field(
        default=None, pattern=r"^[a-z]{2,3}$", description="first language, ISO 639-1/-3"
    )
    region: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$")
    gender: Gender | None = None


class FeedbackCreated(BaseModel):
    id: str
    result_id: str
    created_at: datetime


class GroupStatView(BaseModel):
    """One group against the rest of its dimension (see megacity.safety.bias)."""

    group: str
    n: int
    correct: int
    accuracy: float = Field(ge=0, le=1)
    disparity_ratio: float | None = Field(description="accuracy / the best tested group's")
    z: float | None
    p_value: float | None = Field(description="two-sided, before the Holm correction")
    significant: bool = Field(description="after Holm–Bonferroni across the dimension")
    tested: bool = Field(description="the group and the rest have at least min_samples")


class DimensionView(BaseModel):
    dimension: Literal["age_band", "l1_language", "region", "gender"]
    groups: list[GroupStatView]
    min_disparity_ratio: float | None
    flagged: bool = Field(description="a group is significant and below disparity_threshold")
    unreported: int = Field(ge=0, description="rows without this bucket, left out of groups")


class OverallView(BaseModel):
    n: int
    correct: int
    accuracy: float | None = Field(description="null when there is no feedback")


class BiasParameters(BaseModel):
    engine: EngineName | None
    zone: str | None
    since: datetime | None
    until: datetime | None
    min_samples: int
    alpha: float
    disparity_threshold: float


class BiasReport(BaseModel):
    """GET /api/v1/ai/bias-report: accuracy per demographic group, and what stands out."""

    parameters: BiasParameters
    overall: OverallView
    dimensions: list[DimensionView]
    flagged: bool


class ConsentCreate(BaseModel):
    """POST /api/v1/consents: a person's consent to have their voice or face synthesised."""

    model_config = ConfigDict(extra="forbid")

    subject_id: str = Field(pattern=SAFE_ID, description="whose voice or face it is")
    granted_by: str = Field(pattern=SAFE_ID, description="the subject, or their guardian")
    scopes: list[Scope] = Field(min_length=1, max_length=len(get_args(Scope)))
    evidence: str | None = Field(
        default=None, min_length=1, max_length=512, description="e.g. the signed form's id"
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="in the future, at most five years ahead; timezone required"
    )

    @field_validator("scopes")
    @classmethod
    def _distinct(cls, scopes: list[str]) -> list[str]:
        if len(set(scopes)) != len(scopes):
            raise ValueError("a scope is listed twice")
        return scopes

    @field_validator("evidence")
    @classmethod
    def _printable(cls, evidence: str | None) -> str | None:
        # Control characters (NUL above all: PostgreSQL refuses it) have no place in a reference.
        if evidence is not None and not evidence.isprintable():
            raise ValueError("evidence must be printable text")
        return evidence

    @field_validator("expires_at")
    @classmethod
    def _ahead(cls, expires_at: datetime | None) -> datetime | None:
        if expires_at is None:
            return None
        now = datetime.now(UTC)
        if expires_at <= now:
            raise ValueError("expires_at must be in the future")
        if expires_at > now + timedelta(days=MAX_CONSENT_DAYS):
            raise ValueError("expires_at may be at most five years ahead")
        return expires_at


class ConsentView(BaseModel):
    id: str
    subject_id: str
    granted_by: str
    scopes: list[Scope]
    evidence: str | None
    status: ConsentStatus
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


class ConsentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ConsentView]
    limit: int
    offset: int


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """openapi_extra declaring `model` as the JSON body a handler reads itself."""
    schema = model.model_json_schema()
    if "$defs" in schema:  # inline only: nested models would need components
        raise ValueError(f"{model.__name__} has nested models; declare it in the app instead")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
