"""Bounds of the motion inputs, apart from the arrays (the API's schemas need them at start-up)."""

MAX_FRAMES = 10_800  # 6 minutes at 30 fps: a whole K-POP song with room to spare
MAX_FPS = 240.0
