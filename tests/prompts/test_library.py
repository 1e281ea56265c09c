"""Prompt strategies: the shipped YAML files, rendering, request models and load checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from megacity.api.schemas import TutorOptions
from megacity.config.topology import Tier
from megacity.errors import BadRequest, NotFound
from megacity.prompts.library import Strategy, StrategyLibrary

SHIPPED = ("bilingual_tutor", "code_review", "essay_feedback", "math_tutor")


@pytest.fixture(scope="module")
def library() -> StrategyLibrary:
    return StrategyLibrary.load()


def test_the_four_strategies_load(library: StrategyLibrary) -> None:
    assert library.names() == list(SHIPPED)
    for name in SHIPPED:
        assert name in library
        assert library.get(name).name == name
    assert "poetry" not in library


@pytest.mark.parametrize("name", SHIPPED)
def test_each_strategy_has_ko_and_en_templates(library: StrategyLibrary, name: str) -> None:
    strategy = library.get(name)
    assert {"ko", "en"} <= set(strategy.templates)
    for locale in ("ko", "en"):
        tpl = strategy.templates[locale]
        assert tpl.system.strip() and tpl.user.strip()
    assert any(spec.required for spec in strategy.fields.values())


@pytest.mark.parametrize(
    ("name", "floor"),
    [
        ("essay_feedback", Tier.T14B),
        ("math_tutor", Tier.T14B),
        ("code_review", Tier.T14B),
        ("bilingual_tutor", None),
    ],
)
def test_tier_floors(library: StrategyLibrary, name: str, floor: Tier | None) -> None:
    assert library.get(name).tier_floor == floor


VALUES: dict[str, dict[str, str]] = {
    "essay_feedback": {
        "essay": "인공지능은 교육을 바꿀 것이다.",
        "topic": "AI와 교육",
        "grade": "고3",
    },
    "math_tutor": {"problem": "2x + 3 = 7 을 풀어라", "answer": "x = 5", "grade": "중2"},
    "code_review": {"code": "def add(a, b): return a - b", "language": "python", "context": "adds"},
    "bilingual_tutor": {"question": "'괜찮아요'는 언제 써요?", "level": "beginner"},
}


@pytest.mark.parametrize("locale", ["ko", "en"])
@pytest.mark.parametrize("name", SHIPPED)
def test_render_puts_values_into_the_user_message(
    library: StrategyLibrary, name: str, locale: str
) -> None:
    strategy = library.get(name)
    messages = strategy.render(VALUES[name], locale)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == messages[0]["content"].strip()
    assert messages[0]["content"].startswith(strategy.templates[locale].system.strip()[:20])
    for field, value in VALUES[name].items():
        if "{" + field + "}" in strategy.templates[locale].user:
            assert value in messages[1]["content"]
    for message in messages:
        assert "{" not in message["content"]  # every placeholder filled


def test_render_uses_the_locale_template(library: StrategyLibrary) -> None:
    strategy = library.get("essay_feedback")
    ko = strategy.render({"essay": "글"}, "ko")
    en = strategy.render({"essay": "text"}, "en")
    assert "논제" in ko[1]["content"]
    assert "Essay question" in en[1]["content"]


@pytest.mark.parametrize("locale", ["ja", "zh", "fr"])
def test_locale_without_template_falls_back_to_english(
    library: StrategyLibrary, locale: str
) -> None:
    strategy = library.get("math_tutor")
    assert strategy.template(locale) == strategy.templates["en"]


def test_missing_optional_field_leaves_no_placeholder(library: StrategyLibrary) -> None:
    messages = library.get("essay_feedback").render({"essay": "My essay."}, "en")
    user = messages[1]["content"]
    assert "My essay." in user
    assert "{topic}" not in user and "{grade}" not in user
    assert "None" not in user


@pytest.mark.parametrize(
    ("name", "values", "missing"),
    [
        ("essay_feedback", {"topic": "t"}, "essay"),
        ("essay_feedback", {"essay": "   \n "}, "essay"),  # blank counts as missing
        ("math_tutor", {"problem": "1+1"}, "answer"),
        ("math_tutor", {"answer": "2"}, "problem"),
        ("code_review", {"language": "go"}, "code"),
        ("bilingual_tutor", {"question": None}, "question"),
    ],
)
def test_missing_required_field(
    library: StrategyLibrary, name: str, values: dict[str, Any], missing: str
) -> None:
    with pytest.raises(BadRequest) as info:
        library.get(name).render(values, "ko")
    assert info.value.code == "missing_field"
    assert info.value.param == missing
    assert repr(missing) in info.value.message


def test_unknown_strategy(library: StrategyLibrary) -> None:
    with pytest.raises(NotFound) as info:
        library.get("poetry")
    assert info.value.code == "unknown_strategy"
    assert info.value.param == "strategy"
    assert "essay_feedback" in info.value.message  # lists the known ones


@pytest.mark.parametrize(
    "value",
    ["{x}", "{essay}", "{0}", "{{x}}", "{}", "def f(): return {'a': 1}", "{essay.__class__}"],
)
def test_braces_in_values_render_literally(library: StrategyLibrary, value: str) -> None:
    messages = library.get("essay_feedback").render({"essay": value, "topic": "t"}, "en")
    assert value in messages[1]["content"]


# --- request models -----------------------------------------------------------------


def test_request_model_accepts_fields_and_options(library: StrategyLibrary) -> None:
    model = library.get("essay_feedback").request_model(TutorOptions)
    request = model.model_validate({"essay": "글", "grade": "고3", "model": "qwen-14b"})
    assert request.essay == "글"  # type: ignore[attr-defined]
    assert request.topic is None  # type: ignore[attr-defined]
    assert request.model == "qwen-14b"  # type: ignore[attr-defined]
    assert request.stream is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"essay": "글", "colour": "red"}, "colour"),  # unknown field
        ({"essay": "글", "grade": "x" * 101}, "grade"),  # over max_length 100
        ({"essay": "x" * 20_001}, "essay"),  # over max_length 20000
        ({"topic": "t"}, "essay"),  # required
        ({"essay": "글", "temperature": 3}, "temperature"),  # TutorOptions bounds
    ],
)
def test_request_model_rejects(library: StrategyLibrary, payload: dict[str, Any], loc: str) -> None:
    model = library.get("essay_feedback").request_model(TutorOptions)
    with pytest.raises(ValidationError) as info:
        model.model_validate(payload)
    assert [err["loc"] for err in info.value.errors()] == [(loc,)]


def test_request_model_schema_names_the_strategy(library: StrategyLibrary) -> None:
    model = library.get("math_tutor").request_model(TutorOptions)
    schema = model.model_json_schema()
    assert model.__name__ == "MathTutorRequest"
    assert {"problem", "answer"} <= set(schema["required"])
    assert schema["properties"]["grade"]["anyOf"][0]["maxLength"] == 100


# --- loading a folder -------------------------------------------------------------


def _strategy(name: str = "quiz", user: str = "{question}") -> dict[str, Any]:
    return {
        "name": name,
        "fields": {"question": {"required": True}},
        "templates": {"en": {"system": "You are a quiz master.", "user": user}},
    }


def _write(folder: Path, stem: str, data: Any) -> None:
    (folder / f"{stem}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")


def test_load_a_folder(tmp_path: Path) -> None:
    _write(tmp_path, "quiz", _strategy())
    (tmp_path / "notes.txt").write_text("not a strategy")
    library = StrategyLibrary.load(tmp_path)
    assert library.names() == ["quiz"]
    messages = library.get("quiz").render({"question": "2+2?"}, "ko")
    assert messages[1] == {"role": "user", "content": "2+2?"}


@pytest.mark.parametrize(
    ("stem", "data", "message"),
    [
        ("quiz", _strategy(user="{question} {answer}"), "unknown field 'answer'"),
        ("quiz", _strategy(user="{0}"), "unknown field '0'"),
        ("quiz", _strategy(user="{question.upper}"), "unknown field"),
        ("quiz", _strategy(name="trivia"), "does not match the file name"),
        ("quiz", {**_strategy(), "colour": "red"}, "invalid prompt strategy"),
        ("quiz", {"name": "quiz"}, "invalid prompt strategy"),  # no fields, no templates
        ("Quiz", _strategy(name="Quiz"), "invalid prompt strategy"),  # bad name pattern
    ],
)
def test_bad_strategy_file(tmp_path: Path, stem: str, data: Any, message: str) -> None:
    _write(tmp_path, "good", {**_strategy(), "name": "good"})
    _write(tmp_path, stem, data)
    with pytest.raises(ValueError, match=message) as info:
        StrategyLibrary.load(tmp_path)
    assert f"{stem}.yaml" in str(info.value)


def test_invalid_yaml_strategy_file(tmp_path: Path) -> None:
    (tmp_path / "quiz.yaml").write_text("name: quiz\nfields: [\n", "utf-8")
    with pytest.raises(ValueError, match="invalid prompt strategy"):
        StrategyLibrary.load(tmp_path)


def test_system_template_fields_are_checked_too(tmp_path: Path) -> None:
    data = _strategy()
    data["templates"]["en"]["system"] = "You teach at {school}."
    _write(tmp_path, "quiz", data)
    with pytest.raises(ValueError, match=r"templates\.en uses unknown field 'school'"):
        StrategyLibrary.load(tmp_path)


def test_escaped_braces_in_a_template_are_allowed(tmp_path: Path) -> None:
    _write(tmp_path, "quiz", _strategy(user='Answer as JSON {{"a": 1}}: {question}'))
    strategy: Strategy = StrategyLibrary.load(tmp_path).get("quiz")
    assert strategy.render({"question": "q"}, "en")[1]["content"] == 'Answer as JSON {"a": 1}: q'
