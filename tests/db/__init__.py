"""Database tests."""

HEAD = "0008_api_key_group"  # the newest migration: the revision a fresh database ends at
