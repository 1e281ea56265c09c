"""K-Zone Dance Lab: reference dances and a learner's attempt → score, where and when, pictures.

* ``add_reference``: a reference video → keypoints through the pose route → an ``.npz``
  in the object store and a row in ``dance_references``.
* ``analyze``: a learner's video → keypoints (in parallel with loading the reference) →
  ``scoring.dance.score_dance`` → a heatmap (body part × time) and an overlay (the
  learner's frame at the worst moment with both skeletons) stored as PNGs with a
  retention deadline → the JSON answer with signed URLs.
* ``analyze_keypoints``: the same scoring for keypoints a client extracted itself
  (MediaPipe or MoveNet in the browser); the overlay is drawn on a plain background.

Storage and database calls block, so they run in worker threads; so do scoring and
drawing (numpy, numba and Pillow release the GIL for most of their work).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from megacity.db import DanceReference, Database
from megacity.db import references as refs_db
from megacity.db.objects import record_object
from megacity.db.replica import SessionFactory
from megacity.engines.keypoints import PoseExtraction
from megacity.engines.upload import MediaUpload
from megacity.engines.video import frame_at
from megacity.errors import BadRequest, Forbidden, NotFound, UnprocessableEntity
from megacity.pipelines.dance_heatmap import heatmap_png
from megacity.pipelines.dance_overlay import overlay_png
from megacity.routing.context import RequestContext
from megacity.routing.pose import PoseAnswer, PoseGateway
from megacity.scoring.dance import score_dance
from megacity.scoring.dance_feedback import clock
from megacity.scoring.dance_types import DanceConfig, DanceResult, Mirror
from megacity.scoring.pose import PoseSequence
from megacity.storage import ObjectStore, keys

MAX_TITLE_CHARS = 200
MIN_BPM, MAX_BPM = 30.0, 300.0
MIN_COVERAGE = 0.2  # a reference where a person is seen in fewer frames is refused
BLANK_HEIGHT = 720  # the overlay canvas for keypoint-only analyses


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    """How to compare: mirror mode ("off", "on", "auto") and an optional bpm for the timeline."""

    mirror: Mirror = "off"
    bpm: float | None = None


class DanceLab:
    """References and analyses; one per router, built by the Services composition root."""

    def __init__(
        self,
        pose: PoseGateway,
        store: ObjectStore,
        db: Database,
        *,
        artefact_retention: timedelta = timedelta(days=90),
    ) -> None:
        self._pose = pose
        self._store = store
        self._db = db
        self._retention = artefact_retention

    # ---- references ---------------------------------------------------------------

    async def add_reference(
        self,
        ctx: RequestContext,
        upload: MediaUpload,
        title: str,
        bpm: float | None,
        started: float,
    ) -> tuple[dict[str, Any], PoseAnswer]:
        """Extract a reference video's keypoints and store them; the new reference's record."""
        title = check_title(title)
        bpm = check_bpm(bpm)
        decision = self._pose.decide(ctx)
        answer = await self._pose.extract(ctx, decision, upload, started)
        ext = answer.extraction
        if ext.coverage < MIN_COVERAGE:
            raise UnprocessableEntity(
                f"a person is visible in only {ext.coverage:.0%} of the reference video's"
                f" frames (at least {MIN_COVERAGE:.0%} needed)",
                code="no_person",
                param="file",
            )
        record = await asyncio.to_thread(self._save_reference, ext, title, bpm, ctx.user_id)
        return record, answer

    def _save_reference(
        self, ext: PoseExtraction, title: str, bpm: float | None, owner: str | None
    ) -> dict[str, Any]:
        ref_id = uuid.uuid4().hex
        key = keys.reference_keypoints_key(ref_id)
        info = self._store.put(str(key), ext.to_npz(), "application/x-npz")
        try:
            with self._db.session() as session:
                ref = refs_db.create_reference(
                    session,
                    ref_id,
                    title=title,
                    bpm=bpm,
                    owner_id=owner,
                    fps=ext.fps,
                    frames=ext.frames,
                    duration_s=ext.duration_s,
                    width=ext.width,
                    height=ext.height,
                    keypoints=info,
                )
                return reference_json(ref)
        except BaseException:
            self._store.delete(str(key))  # nothing half-written: no row, no orphan object
            raise

    async def list_references(
        self, limit: int, offset: int, *, session: SessionFactory | None = None
    ) -> list[dict[str, Any]]:
        """Stored references, newest first (`session`: the read replica's, if lag is fine)."""
        opened = session or self._db.session

        def run() -> list[dict[str, Any]]:
            with opened() as tx:
                rows = refs_db.list_references(tx, limit=limit, offset=offset)
                return [reference_json(r) for r in rows]

        return await asyncio.to_thread(run)

    async def get_reference(
        self, reference_id: str, *, session: SessionFactory | None = None
    ) -> dict[str, Any]:
        """One reference's record; 404 when there is none."""
        opened = session or self._db.session

        def run() -> dict[str, Any]:
            with opened() as tx:
                return reference_json(self._row(tx, reference_id))

        return await asyncio.to_thread(run)

    async def delete_reference(self, ctx: RequestContext, reference_id: str) -> None:
        """Remove a reference's row and its stored keypoints (only its owner, if it has one)."""

        def run() -> None:
            with self._db.session() as session:
                row = self._row(session, reference_id)
                if row.owner_id is not None and row.owner_id != ctx.user_id:
                    raise Forbidden(
                        "only the user who added this reference may delete it",
                        code="not_owner",
                        param="reference_id",
                    )
                object_keys = refs_db.delete_reference(session, reference_id)
            for key in object_keys:  # after the commit: a failed delete leaves no dangling row
                self._store.delete(key)

        await asyncio.to_thread(run)

    def _row(self, session: Session, reference_id: str) -> DanceReference:
        return refs_db.get_reference(session, check_reference_id(reference_id))

    def _load_reference(self, reference_id: str) -> tuple[PoseSequence, float | None, str]:
        with self._db.session() as session:
            row = self._row(session, reference_id)
            key, bpm, title = row.keypoints_key, row.bpm, row.title
        return PoseExtraction.from_npz(self._store.get(key)).sequence(), bpm, title

    # ---- analyses -----------------------------------------------------------------

    async def analyze(
        self,
        ctx: RequestContext,
        upload: MediaUpload,
        reference_id: str,
        options: AnalyzeOptions,
        started: float,
    ) -> tuple[dict[str, Any], PoseAnswer]:
        """Score a learner's video against a stored reference, with pictures."""
        reference_id = check_reference_id(reference_id)
        decision = self._pose.decide(ctx)
        loaded = asyncio.create_task(asyncio.to_thread(self._load_reference, reference_id))
        try:
            answer = await self._pose.extract(ctx, decision, upload, started)
        except BaseException:
            loaded.cancel()
            raise
        reference, bpm, title = await loaded
        attempt = answer.extraction.sequence()
        config = _config(options, bpm, title)
        body = await asyncio.to_thread(
            self._analyze_sync, attempt, reference, config, upload.data, ctx.user_id
        )
        body["reference_id"] = reference_id
        return body, answer

    async def analyze_keypoints(
        self,
        ctx: RequestContext,
        attempt: PoseSequence,
        reference: PoseSequence | str,
        options: AnalyzeOptions,
    ) -> dict[str, Any]:
        """Score client-side keypoints against a stored reference (by id) or given keypoints."""
        bpm, title = None, None
        if isinstance(reference, str):
            ref_seq, bpm, title = await asyncio.to_thread(self._load_reference, reference)
        else:
            ref_seq = reference
        config = _config(options, bpm, title)
        return await asyncio.to_thread(
            self._analyze_sync, attempt, ref_seq, config, None, ctx.user_id
        )

    def _analyze_sync(
        self,
        attempt: PoseSequence,
        reference: PoseSequence,
        config: DanceConfig,
        video: bytes | None,
        owner: str | None,
    ) -> dict[str, Any]:
        try:
            result = score_dance(attempt, reference, config)
        except ValueError as exc:  # nobody visible in enough frames
            raise UnprocessableEntity(str(exc), code="no_person") from None
        analysis_id = uuid.uuid4().hex
        heat = heatmap_png(result.heatmap, title=f"{result.score:.0f} / 100")
        overlay = self._overlay(result, attempt, reference, video)
        urls = self._store_pictures(analysis_id, {"heatmap": heat, "overlay": overlay}, owner)
        return analysis_json(result, attempt, analysis_id, urls)

    def _overlay(
        self,
        result: DanceResult,
        attempt: PoseSequence,
        reference: PoseSequence,
        video: bytes | None,
    ) -> bytes:
        t, ref_t, part, caption = _focus(result, attempt)
        i = _nearest(attempt.times, t)
        j = _nearest(reference.times, ref_t)
        if video is not None:
            frame = frame_at(video, float(attempt.times[i]))
        else:
            width = round(BLANK_HEIGHT * attempt.aspect_ratio)
            frame = np.full((BLANK_HEIGHT, max(width, 1), 3), 32, dtype=np.uint8)
        return overlay_png(
            frame,
            np.array(attempt.keypoints[i]),
            np.array(reference.keypoints[j]),
            part=part,
            caption=caption,
            aspect_ratio=reference.aspect_ratio,
            mirror=result.mirrored,  # the learner copied a mirrored video: show what they copied
        )

    def _store_pictures(
        self, analysis_id: str, pictures: dict[str, bytes], owner: str | None
    ) -> dict[str, str]:
        expires = datetime.now(UTC) + self._retention
        urls: dict[str, str] = {}
        for name, png in pictures.items():
            key = keys.analysis_image_key(analysis_id, name)
            info = self._store.put(str(key), png, "image/png")
            with self._db.session() as session:
                record_object(session, info, key.kind, owner_id=owner, expires_at=expires)
            urls[f"{name}_url"] = self._store.signed_url(str(key))
        return urls


def _config(options: AnalyzeOptions, reference_bpm: float | None, title: str | None) -> DanceConfig:
    return DanceConfig(mirror=options.mirror, bpm=options.bpm or reference_bpm, title=title)


def _nearest(times: np.ndarray, t: float) -> int:
    return int(np.clip(np.searchsorted(times, t), 0, len(times) - 1))


def _focus(result: DanceResult, attempt: PoseSequence) -> tuple[float, float, str | None, str]:
    """The moment the overlay shows: the worst moment's peak, else the middle of the clip."""
    if result.worst_moments:
        m = result.worst_moments[0]
        feedback = next((f for f in result.feedback if f.part == m.part), None)
        caption = feedback.en if feedback else f"{m.en} at {clock(m.start_s)}"
        return m.peak_s, m.reference_s, m.part, caption
    present = np.flatnonzero(~np.isnan(attempt.keypoints[:, 0, 0]))
    i = int(present[len(present) // 2]) if len(present) else attempt.frames // 2
    t = float(attempt.times[i])
    offset_s = (result.timing.offset_ms or 0.0) / 1000.0
    ref_t = (t - offset_s) / max(result.timing.tempo_ratio or 1.0, 1e-6)
    return t, ref_t, None, result.feedback[0].en if result.feedback else ""


def analysis_json(
    result: DanceResult, attempt: PoseSequence, analysis_id: str, urls: dict[str, str]
) -> dict[str, Any]:
    """The analyze endpoints' answer (README, "Dance Lab")."""
    data = result.to_dict()
    return {
        "analysis_id": analysis_id,
        "score": data["score"],
        "body_parts": data["parts"],
        "timing": data["timing"],
        "match": data["match"],
        "moves": data["moves"],
        "timeline": data["timeline"],
        "worst_moments": data["worst_moments"],
        "feedback": data["feedback"],
        **urls,
        "mirrored": data["mirrored"],
        "coverage": data["coverage"],
        "frames": attempt.frames,
        "duration_s": round(float(attempt.times[-1] - attempt.times[0]), 3),
    }


def reference_json(ref: DanceReference) -> dict[str, Any]:
    """A reference's public record."""
    return {
        "id": ref.id,
        "title": ref.title,
        "bpm": ref.bpm,
        "fps": ref.fps,
        "frames": ref.frames,
        "duration_s": ref.duration_s,
        "width": ref.width,
        "height": ref.height,
        "created_at": ref.created_at.isoformat(),
    }


def check_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise BadRequest("a reference needs a `title`", code="invalid_title", param="title")
    if len(title) > MAX_TITLE_CHARS or any(ord(c) < 32 for c in title):
        raise BadRequest(
            f"title must be at most {MAX_TITLE_CHARS} printable characters",
            code="invalid_title",
            param="title",
        )
    return title


def check_bpm(bpm: float | None) -> float | None:
    if bpm is not None and not (MIN_BPM <= bpm <= MAX_BPM):
        raise BadRequest(
            f"bpm must be within {MIN_BPM:g}..{MAX_BPM:g}", code="invalid_bpm", param="bpm"
        )
    return bpm


def check_reference_id(reference_id: str) -> str:
    rid = reference_id.strip().lower()
    if len(rid) != 32 or any(c not in "0123456789abcdef" for c in rid):
        raise NotFound(f"no reference {reference_id[:40]!r}", code="reference_not_found")
    return rid
