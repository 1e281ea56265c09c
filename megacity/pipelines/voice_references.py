"""Voice references for sing-along and shadowing: a reference recording and its lyrics or
script → pitch contour, word timings and lines → an ``.npz`` in the object store
(``kzone/voice/references/{id}/contour.npz``, kind ``contour``) and a row in
``voice_references``, owned by the user who added it.

The recording itself is not kept: only what the scores need (F0, loudness and MFCCs every
10 ms, and when each word and line was sung or said). Its words are timed by the speech
route (Whisper word timings, aligned with the text), so a reference is transcribed once.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from megacity.db import Database, VoiceReference
from megacity.db import voice_references as refs_db
from megacity.engines.speech import TranscribeOptions
from megacity.engines.speech_http import AudioUpload
from megacity.errors import BadRequest, Forbidden
from megacity.pipelines.dance import check_reference_id, check_title
from megacity.routing.context import RequestContext
from megacity.routing.speech import SpeechAnswer, SpeechGateway
from megacity.scoring import textnorm
from megacity.scoring.languages import LANGUAGES, PROSODY_MODES
from megacity.scoring.pronunciation import MAX_TEXT_CHARS
from megacity.storage import ObjectStore, keys

if TYPE_CHECKING:
    from megacity.pipelines.voice_prosody import StoredVoice

TITLE_CHARS = 60  # a title made from the text when none is given


@dataclass(frozen=True, slots=True)
class NewVoiceReference:
    """What a client sends: the lyrics or script, its language, the practice mode, a title."""

    text: str
    language: str
    mode: str
    title: str | None = None

    def checked(self) -> NewVoiceReference:
        """400 for a bad field, before any audio is decoded; the title made when missing."""
        if self.language not in LANGUAGES:
            raise BadRequest(f"language must be one of {', '.join(LANGUAGES)}",
                             code="unsupported_language", param="language")  # fmt: skip
        if self.mode not in PROSODY_MODES:
            raise BadRequest(f"mode must be one of {', '.join(PROSODY_MODES)}",
                             code="invalid_mode", param="mode")  # fmt: skip
        text = self.text.strip()
        if len(text) > MAX_TEXT_CHARS or not textnorm.reference_words(text, self.language):
            raise BadRequest(f"text must have words to score and at most {MAX_TEXT_CHARS} characters",
                             code="invalid_reference", param="text")  # fmt: skip
        title = check_title(self.title if self.title else " ".join(text.split())[:TITLE_CHARS])
        return NewVoiceReference(text, self.language, self.mode, title)


class VoiceReferences:
    """Voice references; one per router, built by the Services composition root."""

    def __init__(
        self, speech: SpeechGateway, store: ObjectStore, db: Database, *, max_audio_s: float
    ) -> None:
        self._speech = speech
        self._store = store
        self._db = db
        self._max_audio_s = max_audio_s

    async def add(
        self, ctx: RequestContext, new: NewVoiceReference, upload: AudioUpload, started: float
    ) -> tuple[dict[str, Any], SpeechAnswer]:
        """Track the recording's pitch, time its words, and store both; the new record."""
        from megacity.engines.pitch import track_to_npz  # numpy, av: not at start-up
        from megacity.pipelines.voice import recognized_words
        from megacity.pipelines.voice_prosody import (
            describe_reference,
            heard_and_pitch,
            reference_timings,
        )

        new = new.checked()
        decision = self._speech.decide(ctx, None)
        options = TranscribeOptions(language=new.language, prompt=new.text[:2000], word_timestamps=True)  # fmt: skip
        answer, track = await heard_and_pitch(
            self._speech, ctx, decision, upload, options, started,
            mode=new.mode, max_seconds=self._max_audio_s, who="reference",
        )  # fmt: skip
        heard = recognized_words(answer.transcript.words)
        words, phrases = reference_timings(new.text, new.language, new.mode, heard)
        record = await asyncio.to_thread(
            self._save, new, track_to_npz(track, words, phrases), describe_reference(track),
            len(words), ctx.user_id,
        )  # fmt: skip
        return record, answer

    def _save(
        self,
        new: NewVoiceReference,
        contour: bytes,
        facts: dict[str, float],
        words: int,
        owner: str | None,
    ) -> dict[str, Any]:
        ref_id = uuid.uuid4().hex
        key = str(keys.voice_contour_key(ref_id))
        info = self._store.put(key, contour, "application/x-npz")
        try:
            with self._db.session() as session:
                row = refs_db.create_voice_reference(
                    session, ref_id, title=new.title or "", language=new.language,
                    mode=new.mode, text=new.text, words=words, features=info, owner_id=owner,
                    duration_s=facts["duration_s"], voiced_s=facts["voiced_s"],
                    median_f0_hz=facts["median_f0_hz"],
                )  # fmt: skip
                return voice_reference_json(row)
        except BaseException:
            self._store.delete(key)  # nothing half-written: no row, no orphan object
            raise

    async def list_references(self, limit: int, offset: int) -> list[dict[str, Any]]:
        """Stored voice references, newest first."""

        def run() -> list[dict[str, Any]]:
            with self._db.session() as session:
                rows = refs_db.list_voice_references(session, limit=limit, offset=offset)
                return [voice_reference_json(r) for r in rows]

        return await asyncio.to_thread(run)

    async def get(self, reference_id: str) -> dict[str, Any]:
        """One voice reference's record; 404 when there is none."""

        def run() -> dict[str, Any]:
            with self._db.session() as session:
                return voice_reference_json(self._row(session, reference_id))

        return await asyncio.to_thread(run)

    async def delete(self, ctx: RequestContext, reference_id: str) -> None:
        """Remove a voice reference's row and its contour (only its owner, if it has one)."""

        def run() -> None:
            with self._db.session() as session:
                row = self._row(session, reference_id)
                if row.owner_id is not None and row.owner_id != ctx.user_id:
                    raise Forbidden("only the user who added this reference may delete it",
                                    code="not_owner", param="reference_id")  # fmt: skip
                object_keys = refs_db.delete_voice_reference(session, row.id)
            for key in object_keys:  # after the commit: a failed delete leaves no dangling row
                self._store.delete(key)

        await asyncio.to_thread(run)

    def load(self, reference_id: str) -> StoredVoice:
        """A reference's contour, words and lines, for scoring (blocking: call in a thread)."""
        from megacity.engines.pitch import track_from_npz
        from megacity.pipelines.voice_prosody import StoredVoice

        with self._db.session() as session:
            row = self._row(session, reference_id)
            facts = (row.id, row.title, row.language, row.mode, row.text, row.features_key)
        rid, title, language, mode, text, key = facts
        track, words, phrases = track_from_npz(self._store.get(key))
        return StoredVoice(rid, title, language, mode, text, track, tuple(words), tuple(phrases))

    def _row(self, session: Session, reference_id: str) -> VoiceReference:
        return refs_db.get_voice_reference(session, check_reference_id(reference_id))


def voice_reference_json(ref: VoiceReference) -> dict[str, Any]:
    """A voice reference's public record."""
    return {
        "id": ref.id,
        "title": ref.title,
        "language": ref.language,
        "mode": ref.mode,
        "text": ref.text,
        "duration_s": ref.duration_s,
        "voiced_s": ref.voiced_s,
        "median_f0_hz": ref.median_f0_hz,
        "words": ref.words,
        "created_at": ref.created_at.isoformat(),
    }
