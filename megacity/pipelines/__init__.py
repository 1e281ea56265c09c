"""Composition: pipelines that combine routes and pure scoring (voice practice, coaching)."""
