"""MegaCity AI: the AI Router and its engines."""

__version__ = "0.1.0"
