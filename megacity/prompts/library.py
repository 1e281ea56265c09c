"""Prompt strategies: YAML data files (system + user templates per locale) and their rendering."""

from __future__ import annotations

import string
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from megacity.config.topology import Tier
from megacity.errors import BadRequest, NotFound

_FORMATTER = string.Formatter()


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    required: bool = False
    max_length: int = Field(default=8000, ge=1, le=200_000)
    description: str = ""


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str
    user: str


# Something str.strip() keeps: not whitespace in Python's sense nor in ECMAScript's (JSON
# Schema validators disagree on \x1c-\x1f and \x85).
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"


class Strategy(BaseModel):
    """One prompt strategy as loaded from `megacity/prompts/strategies/<name>.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    description: str = ""
    tier_floor: Tier | None = None
    fields: dict[str, FieldSpec]
    templates: dict[str, Template]

    def template(self, locale: str) -> Template:
        """The template for a locale; English, then any, when the locale has none."""
        return (
            self.templates.get(locale)
            or self.templates.get("en")
            or next(iter(self.templates.values()))
        )

    def render(self, values: Mapping[str, Any], locale: str) -> list[dict[str, str]]:
        """Chat messages for the given field values (missing optional fields render as "-")."""
        for name, spec in self.fields.items():
            if spec.required and not str(values.get(name) or "").strip():
                raise BadRequest(f"field {name!r} is required", code="missing_field", param=name)
        filled = {name: str(values.get(name) or "-") for name in self.fields}
        tpl = self.template(locale)
        return [
            {"role": "system", "content": tpl.system.format_map(filled).strip()},
            {"role": "user", "content": tpl.user.format_map(filled).strip()},
        ]

    def request_model(self, base: type[BaseModel]) -> type[BaseModel]:
        """A pydantic model of `base` plus this strategy's typed fields (validation, OpenAPI)."""
        defs: dict[str, Any] = {}
        for name, spec in self.fields.items():
            # A required field must hold more than blanks (render() refuses them): the
            # pattern documents that without changing the friendlier error it gives.
            extra = {"pattern": NOT_BLANK} if spec.required else None
            annotated = Annotated[
                str,
                Field(
                    max_length=spec.max_length,
                    description=spec.description,
                    json_schema_extra=extra,
                ),
            ]
            defs[name] = (annotated, ...) if spec.required else (annotated | None, None)
        return create_model(
            f"{self.name.title().replace('_', '')}Request",
            __base__=base,
            **defs,
        )


class StrategyLibrary:
    """All strategies of a folder, loaded and checked once at start-up."""

    def __init__(self, strategies: Mapping[str, Strategy]) -> None:
        self._strategies = dict(strategies)

    @classmethod
    def load(cls, folder: Path | None = None) -> StrategyLibrary:
        """Load every *.yaml of a folder (default: the strategies shipped in the package)."""
        root = folder or Path(str(resources.files("megacity.prompts") / "strategies"))
        found: dict[str, Strategy] = {}
        for path in sorted(root.glob("*.yaml")):
            found[path.stem] = _load_one(path)
        return cls(found)

    def __contains__(self, name: object) -> bool:
        return name in self._strategies

    def names(self) -> list[str]:
        return sorted(self._strategies)

    def get(self, name: str) -> Strategy:
        try:
            return self._strategies[name]
        except KeyError:
            known = ", ".join(self.names())
            raise NotFound(
                f"unknown prompt strategy {name!r} (known: {known})",
                code="unknown_strategy",
                param="strategy",
            ) from None


def _load_one(path: Path) -> Strategy:
    try:
        strategy = Strategy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{path}: invalid prompt strategy: {exc}") from None
    if strategy.name != path.stem:
        raise ValueError(f"{path}: name {strategy.name!r} does not match the file name")
    for locale, tpl in strategy.templates.items():
        for text in (tpl.system, tpl.user):
            for _, field, _, _ in _FORMATTER.parse(text):
                if field is not None and field not in strategy.fields:
                    raise ValueError(f"{path}: templates.{locale} uses unknown field {field!r}")
    return strategy
