"""Database tests."""

HEAD = "0007_scale"  # the newest migration: the revision a fresh database ends at
