"""Prompt strategies as data files (essay feedback, math tutor, code review, bilingual tutor)."""

from megacity.prompts.library import Strategy, StrategyLibrary

__all__ = ["Strategy", "StrategyLibrary"]
