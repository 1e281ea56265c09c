"""Errors shared by the in-process engines (speech, pose, generation)."""

from __future__ import annotations

from megacity.errors import ServiceUnavailable


class ModelUnavailable(ServiceUnavailable):
    """An engine's model could not be loaded (missing file or folder, no download, bad files)."""

    code = "model_unavailable"
