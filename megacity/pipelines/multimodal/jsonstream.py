"""The learner-facing text inside a JSON answer that is still being written.

The accelerator writes its answer as JSON (``{"summary": "…", "strengths": ["…"],
"fixes": [{"text": "…"}], "next_exercise": "…"}``); the stream's ``delta`` events carry
the text of those fields as the model writes it, not the JSON around it. This is a small
incremental JSON scanner: it follows objects, arrays and keys character by character
and emits the characters of string values at the paths below, decoding escapes. It
never fails: text that is not JSON simply yields nothing (the final answer is still
validated as a whole).
"""

from __future__ import annotations

from dataclasses import dataclass

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
TOP_FIELDS = frozenset({"summary", "next_exercise"})


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New characters of one field: `index` is the item of a list field (strengths, fixes)."""

    field: str
    index: int | None
    text: str


class _Frame:
    __slots__ = ("expect_key", "index", "is_object", "key")

    def __init__(self, is_object: bool) -> None:
        self.is_object = is_object
        self.key: str | None = None
        self.expect_key = is_object
        self.index = 0


class JsonTextStream:
    """Feed answer text in pieces; get the deltas of the learner-facing fields."""

    def __init__(self) -> None:
        self._stack: list[_Frame] = []
        self._in_string = False
        self._is_key = False
        self._escape = False
        self._unicode: str | None = None
        self._key: list[str] = []
        self._target: tuple[str, int | None] | None = None

    def feed(self, text: str) -> list[TextDelta]:
        out: list[TextDelta] = []
        for char in text:
            emitted = self._in_string_char(char) if self._in_string else self._structural(char)
            if emitted and self._target is not None:
                field, index = self._target
                if out and out[-1].field == field and out[-1].index == index:
                    out[-1] = TextDelta(field, index, out[-1].text + emitted)
                else:
                    out.append(TextDelta(field, index, emitted))
        return out

    def _structural(self, char: str) -> str:
        top = self._stack[-1] if self._stack else None
        if char == "{":
            self._stack.append(_Frame(True))
        elif char == "[":
            self._stack.append(_Frame(False))
        elif char in "}]":
            if self._stack:
                self._stack.pop()
        elif char == ":" and top is not None and top.is_object:
            top.expect_key = False
        elif char == "," and top is not None:
            if top.is_object:
                top.expect_key, top.key = True, None
            else:
                top.index += 1
        elif char == '"':
            self._in_string = True
            self._is_key = top is not None and top.is_object and top.expect_key
            self._key.clear()
            self._target = None if self._is_key else self._path_target()
        return ""

    def _in_string_char(self, char: str) -> str:
        if self._unicode is not None:
            self._unicode += char
            if len(self._unicode) < 4:
                return ""
            code, self._unicode = self._unicode, None
            try:
                decoded = chr(int(code, 16))
            except ValueError:
                return ""
            return self._add(decoded if not 0xD800 <= ord(decoded) <= 0xDFFF else "")
        if self._escape:
            self._escape = False
            if char == "u":
                self._unicode = ""
                return ""
            return self._add(_ESCAPES.get(char, char))
        if char == "\\":
            self._escape = True
            return ""
        if char == '"':
            self._in_string = False
            if self._is_key and self._stack:
                self._stack[-1].key = "".join(self._key)
            self._target = None
            return ""
        return self._add(char)

    def _add(self, text: str) -> str:
        if self._is_key:
            self._key.append(text)
            return ""
        return text if self._target is not None else ""

    def _path_target(self) -> tuple[str, int | None] | None:
        s = self._stack
        if len(s) == 1 and s[0].is_object and s[0].key in TOP_FIELDS:
            return (s[0].key, None)
        if len(s) == 2 and s[0].key == "strengths" and not s[1].is_object:
            return ("strengths", s[1].index)
        if (
            len(s) == 3
            and s[0].key == "fixes"
            and not s[1].is_object
            and s[2].is_object
            and s[2].key == "text"
        ):
            return ("fixes", s[1].index)
        return None


__all__ = ["JsonTextStream", "TextDelta"]
