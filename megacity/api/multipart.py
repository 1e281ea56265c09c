"""multipart/form-data read into memory under a byte limit; nothing is written to disk.

Starlette's form parser spools large files to temporary files; uploads here are audio
that is decoded from memory anyway, so the body is read (bounded by `read_body`) and
parsed in place with python-multipart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from megacity.api.context import read_body
from megacity.errors import BadRequest, UnsupportedMediaType

_MAX_PARTS = 64
_MAX_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Form:
    """Text fields (every value of a repeated name, in order) and files by field name."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)  # the last file of each name
    file_lists: dict[str, list[UploadedFile]] = field(default_factory=dict)  # all, in order

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None

    def all(self, name: str) -> list[str]:
        return list(self.fields.get(name, ()))


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    data: list[bytes] = field(default_factory=list)
    size: int = 0


async def read_form(request: Request, limit: int) -> Form:
    """Parse a multipart body of at most `limit` bytes; 400/413/415 in the envelope otherwise."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data":
        raise UnsupportedMediaType(
            f"expected multipart/form-data, got {ctype.decode('latin-1') or 'no content type'!r}"
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart body without a boundary", code="invalid_multipart")
    body = await read_body(request, limit)
    return parse_form(body, boundary)


def parse_form(body: bytes, boundary: bytes) -> Form:
    """Parse a complete multipart/form-data body held in memory."""
    parts: list[_Part] = []
    header_field: list[bytes] = []
    header_value: list[bytes] = []

    def on_part_begin() -> None:
        if len(parts) >= _MAX_PARTS:
            raise BadRequest(f"more than {_MAX_PARTS} form fields", code="invalid_multipart")
        parts.append(_Part())

    def on_header_end() -> None:
        name = b"".join(header_field).decode("latin-1").lower()
        parts[-1].headers[name] = b"".join(header_value).decode("latin-1")  # bytes kept as-is
        header_field.clear()
        header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        part.data.append(data[start:end])
        part.size += end - start

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": lambda d, s, e: header_field.append(d[s:e]),
            "on_header_value": lambda d, s, e: header_value.append(d[s:e]),
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"malformed multipart body: {exc}", code="invalid_multipart") from None
    return _collect(parts)


def _collect(parts: list[_Part]) -> Form:
    form = Form()
    for part in parts:
        disposition, options = parse_options_header(part.headers.get("content-disposition", ""))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            raise BadRequest("a multipart part has no form-data name", code="invalid_multipart")
        key = name.decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is not None:
            file = UploadedFile(
                filename.decode("utf-8", "replace"),
                part.headers.get("content-type", "application/octet-stream"),
                b"".join(part.data),
            )
            form.files[key] = file
            form.file_lists.setdefault(key, []).append(file)
            continue
        if part.size > _MAX_FIELD_BYTES:
            raise BadRequest(
                f"form field {key!r} is over {_MAX_FIELD_BYTES} bytes",
                code="invalid_multipart",
                param=key,
            )
        value = b"".join(part.data).decode("utf-8", "replace")
        form.fields.setdefault(key, []).append(value)
    return form
