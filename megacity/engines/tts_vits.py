"""The TTS engine's neural voice: an MMS-TTS (VITS) model and tokenizer through transformers.

torch and transformers are imported when a model is loaded, never at import, so the
router runs without them (espeak-ng then speaks). MMS models for non-Latin scripts
(Korean, Japanese …) want romanised input: the tokenizer says so with ``is_uroman``
and this module romanises with one ``uroman.Uroman`` per model, because the tokenizer
would build a new one (seconds) on every call.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from megacity.errors import UnprocessableEntity

# Style → multipliers of the model's (speaking_rate, noise_scale, noise_scale_duration).
PROSODY_PRESETS: dict[str, tuple[float, float, float]] = {
    "neutral": (1.0, 1.0, 1.0),
    "happy": (1.1, 1.15, 1.1),
    "sad": (0.85, 0.8, 0.9),
    "calm": (0.9, 0.7, 0.7),
    "excited": (1.25, 1.3, 1.2),
}
_PAUSE_S = 0.2  # silence between spoken chunks, at speed 1


class Vits:
    """A loaded VitsModel + tokenizer (+ uroman when the tokenizer asks for romanised text)."""

    def __init__(self, model: str, device: str) -> None:
        import torch
        from transformers import AutoTokenizer, VitsModel

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        loaded: Any = VitsModel.from_pretrained(model)
        self.model = loaded.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.sample_rate = int(self.model.config.sampling_rate)
        # The tokenizer would build a new Uroman (seconds) on every call: romanise here.
        self.uroman: Any = None
        if getattr(self.tokenizer, "is_uroman", False):
            import uroman

            self.uroman = uroman.Uroman()
        # VITS reads its noise scales from attributes; one shallow copy per style shares the
        # weights and keeps requests from changing each other's prosody.
        self.styles: dict[str, Any] = {}
        for style, (_, noise, noise_duration) in PROSODY_PRESETS.items():
            view = self.model if style == "neutral" else _shallow_copy(self.model)
            view.noise_scale = self.model.noise_scale * noise
            view.noise_scale_duration = self.model.noise_scale_duration * noise_duration
            self.styles[style] = view
        # The noise comes from torch's global generator, which a seed has to own.
        self._forward = threading.Lock()

    def synthesize(
        self, chunks: list[str], style: str, speed: float, seed: int | None
    ) -> np.ndarray:
        import torch

        rate = self.model.speaking_rate * PROSODY_PRESETS[style][0] * speed
        encoded = [self._encode(chunk) for chunk in chunks]
        encoded = [ids for ids in encoded if ids is not None]
        if not encoded:
            raise UnprocessableEntity(
                "this model has no letters for the input's language; use a model for it",
                code="unsupported_text",
                param="input",
            )
        pause = np.zeros(round(self.sample_rate * _PAUSE_S / speed), dtype=np.float32)
        pieces: list[np.ndarray] = []
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with (
            self._forward,
            torch.inference_mode(),
            torch.random.fork_rng(devices=devices, enabled=seed is not None),
        ):
            if seed is not None:
                torch.manual_seed(seed)
            for ids in encoded:
                out = self.styles[style](input_ids=ids.to(self.device), speaking_rate=rate)
                pieces += [out.waveform[0].float().cpu().numpy(), pause]
        return np.concatenate(pieces[:-1])

    def _encode(self, chunk: str) -> Any:
        if self.uroman is not None and not chunk.isascii():
            chunk = self.uroman.romanize_string(chunk)
        ids = self.tokenizer(chunk, return_tensors="pt")["input_ids"]
        if not bool((ids != self.tokenizer.pad_token_id).any()):
            return None  # nothing left after the tokenizer dropped what it cannot say
        return ids


def _shallow_copy(model: Any) -> Any:
    view = object.__new__(type(model))
    view.__dict__.update(model.__dict__)
    return view
