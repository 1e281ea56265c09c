"""Protected identities: Korean and Latin names in prompts, the YAML file, bad entries."""

from __future__ import annotations

import random
import string
import time
from pathlib import Path

import pytest

from megacity.safety.identity import ProtectedIdentities, ProtectedIdentity, normalise

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "protected_identities.yaml"


@pytest.fixture(scope="module")
def identities() -> ProtectedIdentities:
    return ProtectedIdentities.load(EXAMPLE)


@pytest.mark.parametrize(
    ("text", "identity"),
    [
        ("sing like IU please", "IU"),
        ("IU", "IU"),
        ("IU의 목소리로 불러줘", "IU"),
        ("아이유의 목소리로 읽어줘", "IU"),
        ("아이유처럼 불러줘", "IU"),
        ("아이유 노래 스타일", "IU"),
        ("아이유목소리로", "IU"),
        ("아이유!", "IU"),
        ("아 이 유 목소리", "IU"),
        ("이지은 씨 얼굴", "IU"),
        ("lee ji-eun", "IU"),
        ("ＩＵ voice", "IU"),  # full-width letters
        ("I\u200bU voice", "IU"),  # a zero-width space inside the name
        ("Jung-kook style", "Jungkook"),
        ("in the style of jung kook", "Jungkook"),
        ("JUNGKOOK", "Jungkook"),
        ("정국이 노래하듯", "Jungkook"),
        ("전정국처럼", "Jungkook"),
        ("a BTS song", "BTS"),
        ("방탄소년단의 안무", "BTS"),
        ("블랙핑크 제니 얼굴", "BLACKPINK"),  # the first name in the text
        ("제니 얼굴로 만들어줘", "Jennie"),
        ("Jennie Kim portrait", "Jennie"),
    ],
)
def test_names_are_found(identities: ProtectedIdentities, text: str, identity: str) -> None:
    for kind in ("voice", "face"):
        found = identities.match(text, kind)
        assert found is not None and found.identity == identity and found.kind == kind


@pytest.mark.parametrize(
    "text",
    [
        "IUPAC naming rules",
        "Kiu and friends",
        "aiu",
        "아 이유가 뭐야",  # "ah, what is the reason": a half-spaced name is not the name
        "아이유학 준비",  # 아이 유학 (a child's study abroad)
        "제니퍼 로페즈",  # Jennifer
        "Jennifer Lopez",
        "subtsx",
        "a calm female narrator",
        "",
    ],
)
def test_lookalikes_are_not_names(identities: ProtectedIdentities, text: str) -> None:
    assert identities.match(text, "voice") is None


def test_the_reported_alias_and_the_longest_name_win(identities: ProtectedIdentities) -> None:
    found = identities.match("방탄소년단 목소리", "voice")
    assert found is not None and found.alias == "방탄소년단"
    found = identities.match("Jennie Kim", "face")
    assert found is not None and found.alias == "Jennie Kim"
    cut = identities.match("방탄소년단학 방탄", "voice")  # the long name fails its edge
    assert cut is not None and cut.alias == "방탄"


def test_kinds_are_separate() -> None:
    voices = ProtectedIdentities(
        [ProtectedIdentity("Narrator Kim", ("김성우",), frozenset({"voice"}))]
    )
    assert voices.match("김성우 목소리", "voice") is not None
    assert voices.match("김성우 얼굴", "face") is None
    assert voices.match("narrator kim", "voice") is not None  # the name is matched too
    assert len(voices) == 1
    with pytest.raises(ValueError, match="unknown kind"):
        voices.match("x", "smell")  # type: ignore[arg-type]


def test_normalise_folds_width_case_and_hidden_characters() -> None:
    assert normalise("ＢＴＳ\u200d") == "bts"
    assert normalise("STRASSE Straße") == "strasse strasse"
    assert normalise("\u1100\u1161") == "가"  # conjoining jamo compose to a syllable


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- name: X\n  aliases: [XY]\n  kinds: [voice]\n", r"entry 1 \('X'\): .*'X' must have"),
        ("- name: Ok\n  aliases: [Okay]\n- name: Bad\n  aliases: [B]\n", "entry 2 \\('Bad'\\)"),
        ("- name: Bad\n  kinds: [smell]\n", "entry 1 \\('Bad'\\).*kinds"),
        ("- name: Bad\n  kinds: []\n", "kinds"),
        ("- name: Bad\n  aliases: Bad\n", "aliases.*list"),
        ("- name: Bad\n  voice: true\n", "unknown fields"),
        ("- just a string\n", "entry 1: expected a mapping"),
        ("- aliases: [abc]\n", "name"),
        ("name: not a list\n", "expected a list"),
        ("- [unclosed\n", "not valid YAML"),
        (f"- name: Long\n  aliases: [{'a' * 101}]\n", "2 to 100"),
    ],
)
def test_bad_files_name_the_entry(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "identities.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        ProtectedIdentities.load(path)
    assert str(path) in str(info.value)


def test_an_empty_file_protects_nobody(tmp_path: Path) -> None:
    path = tmp_path / "identities.yaml"
    path.write_text("# nobody yet\n", encoding="utf-8")
    empty = ProtectedIdentities.load(path)
    assert len(empty) == 0 and empty.match("IU", "voice") is None


def test_hundreds_of_names_stay_fast() -> None:
    rng = random.Random(7)
    people = [
        ProtectedIdentity(
            f"person-{i}",
            (
                "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 10))),
                "".join(chr(rng.randint(0xAC00, 0xD7A3)) for _ in range(3)),
            ),
            frozenset({"voice", "face"}),
        )
        for i in range(500)
    ]
    started = time.perf_counter()
    many = ProtectedIdentities(
        [*people, ProtectedIdentity("IU", ("아이유",), frozenset({"voice"}))]
    )
    built_s = time.perf_counter() - started
    prompt = "밝고 따뜻한 목소리로 이 문장을 천천히 읽어 주세요. " * 10 + "아이유처럼"
    started = time.perf_counter()
    for _ in range(20):
        found = many.match(prompt, "voice")
    per_match_s = (time.perf_counter() - started) / 20
    assert found is not None and found.identity == "IU"
    assert built_s < 3.0 and per_match_s < 0.02  # generous: shared CI machines
