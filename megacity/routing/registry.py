"""Model registry: names, aliases, locale variants and the active version, switchable at run time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from megacity.config.topology import Engine, Model, Tier, Topology
from megacity.errors import BadRequest, NotFound


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A concrete model at its active version, as the router sends it to a node."""

    name: str
    engine: Engine
    tier: Tier | None
    version: str | None
    served_as: str  # the model id put in the upstream request
    modalities: tuple[str, ...] = ("text",)  # what its chat accepts (topology `modalities`)


class ModelRegistry:
    """Looks models up by name or alias and tracks which version of each is active."""

    def __init__(self, topology: Topology) -> None:
        self._models: dict[str, Model] = {m.name: m for m in topology.models}
        self._lookup: dict[str, str] = {}
        for model in topology.models:
            self._lookup[model.name] = model.name
            for alias in model.aliases:
                self._lookup[alias] = model.name
        self._active: dict[str, str | None] = {
            m.name: next((v.version for v in m.versions if v.active), None) for m in topology.models
        }
        self._resolved: dict[str, ResolvedModel] = {}
        for name in self._models:
            self._refresh(name)

    def __contains__(self, name: object) -> bool:
        return name in self._lookup

    def canonical(self, name_or_alias: str) -> str:
        """The model's name for a name or alias; NotFound otherwise."""
        try:
            return self._lookup[name_or_alias]
        except KeyError:
            raise NotFound(
                f"unknown model {name_or_alias!r}", code="model_not_found", param="model"
            ) from None

    def model(self, name: str) -> Model:
        return self._models[self.canonical(name)]

    def resolve(self, name: str) -> ResolvedModel:
        """The model at its active version (name or alias accepted)."""
        return self._resolved[self.canonical(name)]

    def localized(self, name: str, locale: str | None) -> str:
        """The model's variant for a locale (ko/en/ja/zh), or the model itself."""
        model = self.model(name)
        if locale is None:
            return model.name
        return model.locales.get(locale, model.name)  # type: ignore[call-overload]

    def activate(self, name: str, version: str) -> ResolvedModel:
        """Make `version` the active version of a model; takes effect for the next request."""
        model = self.model(name)
        if not any(v.version == version for v in model.versions):
            known = ", ".join(v.version for v in model.versions) or "none"
            raise BadRequest(
                f"model {model.name!r} has no version {version!r} (versions: {known})",
                code="unknown_version",
                param="version",
            )
        self._active[model.name] = version
        return self._refresh(model.name)

    def names(self, engine: Engine | None = None) -> list[str]:
        return [n for n, m in self._models.items() if engine is None or m.engine is engine]

    def describe(self) -> list[dict[str, Any]]:
        """The registry as JSON-ready data: every model with its versions and the active one."""
        return [
            {
                "name": m.name,
                "engine": m.engine.value,
                "tier": m.tier.value if m.tier else None,
                "aliases": list(m.aliases),
                "locales": dict(m.locales),
                "modalities": list(m.modalities),
                "active_version": self._active[m.name],
                "versions": [
                    {
                        "version": v.version,
                        "served_as": v.served_as or m.name,
                        "active": v.version == self._active[m.name],
                        "description": v.description,
                    }
                    for v in m.versions
                ],
                "description": m.description,
            }
            for m in self._models.values()
        ]

    def _refresh(self, name: str) -> ResolvedModel:
        model = self._models[name]
        version = self._active[name]
        served_as = next(
            (v.served_as for v in model.versions if v.version == version and v.served_as),
            model.name,
        )
        resolved = ResolvedModel(
            model.name, model.engine, model.tier, version, served_as, model.modalities
        )
        self._resolved[name] = resolved
        return resolved
