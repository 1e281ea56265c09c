"""HTTP layer: schemas, thin handlers, the error envelope."""

from megacity.api.app import create_app

__all__ = ["create_app"]
