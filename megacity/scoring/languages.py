"""The languages and practice modes the voice scores know (plain tuples, no imports: the
API's schemas need them at start-up, before any scoring library is loaded)."""

LANGUAGES = ("ko", "en", "ja", "zh")
MODES = ("read", "shadowing", "singalong")
PROSODY_MODES = ("shadowing", "singalong")  # the modes a voice reference is recorded for
