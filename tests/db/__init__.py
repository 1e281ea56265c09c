"""Database tests."""

HEAD = "0006_dashboard"  # the newest migration: the revision a fresh database ends at
