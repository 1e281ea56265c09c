"""Person names in context: Korean surname + given name before an honorific or after a cue,
English names after a title or a cue ("my name is", "Dear", "student").

Returns character spans of the name only (never the honorific or the cue). A name needs
context: a bare "김민준" or "Emily" is not found, which keeps precision high.
"""

from __future__ import annotations

import re

from megacity.safety.normalize import any_of

# The ~120 most common Korean surnames; two-syllable ones are tried first.
_COMPOUND_SURNAMES = ("남궁", "황보", "제갈", "선우", "독고", "서문", "사공", "동방")
_SURNAMES = (
    "김이박최정강조윤장임한오서신권황안송전홍유고문양손배백허남심노하곽성차주우구민류나진"
    "지엄채원천방공현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉"
    "사부가복태목형피두감음빈동온호범좌팽승간상시갈견당화창묵라리림로"
)
_SURNAME = "(?:" + "|".join(_COMPOUND_SURNAMES) + "|[" + _SURNAMES + "])"

# Honorifics and roles written after a name; those ending in 님 and 씨/군/양 may be attached.
_HONORIFICS = (
    "학부모님|선생님|교수님|원장님|고객님|회원님|어머님|아버님|선배님|후배님|강사님|코치님|"
    "대리님|과장님|팀장님|부장님|대표님|작가님|학부모|어머니|아버지|선생|교수|원장|선배|후배|"
    "학생|대리|님|씨|군|양"
)
_ATTACHABLE = re.compile(r"(?:님|씨|군|양)$")
# Particles that may follow an honorific or a name ("선생님께서", "학생이", "서윤이고").
_PARTICLE = (
    r"(?=$|[^가-힣]|께서|에게|한테|께|은|는|이|가|을|를|의|도|과|와|랑|만|들|입니|이에요|예요|"
    r"이세요|이고|이며|이신|으로|로|에)"
)
# Honorifics are found first (cheap), then a name is looked for in the few characters before.
KO_HONORIFIC = re.compile(r"(?:" + _HONORIFICS + r")" + _PARTICLE)
KO_NAME_BEFORE = re.compile(r"(?<![가-힣])(" + _SURNAME + r"[가-힣]{1,2})( ?)$")
_NAME_WINDOW = 6  # characters: the longest name (4) plus one space, plus one
# Cues before a name: "이름은", "성명:", "작성자:", "담당자", "예금주", "저는 …입니다".
KO_CUE_NAME = re.compile(
    r"(?:이름\s*(?:은|는|:|：)|성명\s*[:：]?|작성자\s*[:：]?|담당자\s*[:：]?|예금주\s*[:：]?|"
    r"보호자\s*[:：]|신청자\s*[:：]?|수신자\s*[:：]?|입금자명?\s*[:：]?|받는\s?분\s*[:：]?)\s*("
    + _SURNAME
    + r"[가-힣]{1,2})"
    + _PARTICLE
)
KO_SELF_NAME = re.compile(
    r"저는\s+(" + _SURNAME + r"[가-힣]{1,2})(?=입니다|이고|이에요|예요|라고|이라고)"
)
# Common nouns that look like surname + syllable(s) before an honorific.
_KO_STOP_WORDS = (
    "선생 고객 부모 하느 하나 사장 이사 원장 조교 강사 주임 반장 부장 차장 소장 국장 기사 도사 "
    "임금 왕자 공주 고모 이모 선배 후배 감독 기자 원감 목사 신부 수녀 변호사 간호사 장관 방장 "
    "조장 동장 구청장 시장 도지사 지사 지점장 박사 석사 학사 교수 마음 인도 태평 김장 엄마 "
    "아빠 우리 모두 여러 모든 이번 저번 그분 이분 어떤 다른 해당 신입 재학 전학 유학 주말반 "
    "심화반 기초반 오전반 오후반 정규반 영재반 원어민 한국사 한국어 한국인 한국 국어 수학 영어 "
    "과학 사회 가정 도덕 기술 음악 미술 체육 물리 화학 생물 한문 지구 기숙사 장애인 예체능 "
    "방과후 고등학 고등 중학 초등 대학 진로 상담 담임 전담 보조 신규 기존 우수 모범 일반 "
    "국가 시민 주민 회원 관리 운영 작성 담당 구매 판매 방문 손님 형님 누님 언니 오빠 동생 "
    "아드님 따님 사모 사위 며느리 시어머 시아버 장모 장인 외할머 친할머 할머 할아버 이장 연합 "
    "지원 도련 서방 신령 부처 조상 성모 예수 공자 주인 선녀 형수 제수 사부 왕비 도령 신랑 "
    "구독자 시청자 이용자 사용자 조합원 동문 성도 신도 교인"
)
_KO_STOP = frozenset(_KO_STOP_WORDS.split())
# A name rarely ends in these syllables; words such as 신입생, 수학과, 심화반 do.
_KO_STOP_LAST = frozenset("생과반교팀층실")

_EN_WORD = r"[A-Z][a-z]*(?:['’][A-Z])?[a-z]+(?:[A-Z][a-z]+)?(?:-[A-Z][a-z]+)?"
_EN_NAME = _EN_WORD + r"(?:[ ]" + _EN_WORD + r"){0,2}"
_HANGUL_NAME = _SURNAME + r"[가-힣]{1,2}(?![가-힣])"
EN_TITLE_NAME = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor)\.? (" + _EN_NAME + r")(?![A-Za-z])"
)
EN_CUE_NAME = re.compile(
    r"(?i:\b(?:my name is|my name's|name\s*:|i am|i'm|i’m|dear|signed,?|regards,|sincerely,|"
    r"author\s*:|student|tutor|parent of|this is|contact))\s+("
    + _EN_NAME
    + "|"
    + _HANGUL_NAME
    + r")"
    r"(?![A-Za-z])"
)
# Literal pre-checks: the cue regexes run only when one of these substrings occurs.
_TITLE_GATE = ("Mr", "Ms", "Mx", "Dr", "Prof", "Miss")
_CUE_GATE = (
    "name",
    "i am",
    "i'm",
    "i’m",
    "dear",
    "signed",
    "regards",
    "sincerely",
    "author",
    "student",
    "tutor",
    "parent of",
    "this is",
    "contact",
)
_GREETING_GATE = ("hi ", "hi,", "hello", "hey", "thank")
# One regex pass each instead of a Python step per word (this runs on every prompt).
_ANY_GREETING, _ANY_TITLE, _ANY_CUE = map(any_of, (_GREETING_GATE, _TITLE_GATE, _CUE_GATE))
# "Hi Tom," / "Thanks, Anna!": a greeting counts only when a comma or "!" closes the name.
EN_GREETING_NAME = re.compile(
    r"\b(?:[Hh]i|[Hh]ello|[Hh]ey|[Tt]hanks|[Tt]hank you),?\s+(" + _EN_NAME + r")(?=\s*[,!])"
)
# Capitalised words that follow a cue but are not names ("I'm Korean", "Dear Parents").
_EN_STOP_WORDS = (
    "A An The I And Or But So Not Sorry Here Back Done Fine Happy Glad Sure Also Just Very "
    "Really Still New Ready Available Korean English American Chinese Japanese Canadian British "
    "French German Spanish Indian Vietnamese Filipino Australian Asian European Christian "
    "Catholic Buddhist Muslim Parents Parent Students Student Teacher Teachers Team All Everyone "
    "Sir Madam Customer Customers Friends Colleagues Members Admissions Support Staff Hiring "
    "Mr Mrs Ms Miss Mx Dr Prof Professor Hi Hello Yes No In On At From Grade Chapter Section "
    "Python Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March "
    "April May June July August September October November December Council Office"
)
_EN_STOP = frozenset(_EN_STOP_WORDS.split())


def korean_name_spans(text: str) -> list[tuple[int, int]]:
    """Spans of Korean names before an honorific or after a cue, in characters."""
    spans: list[tuple[int, int]] = []
    for h in KO_HONORIFIC.finditer(text):
        m = KO_NAME_BEFORE.search(text, max(0, h.start() - _NAME_WINDOW), h.start())
        if m is None:
            continue
        name, space = m.group(1), m.group(2)
        # "장학생", "모범학생": only 님/씨/군/양 are written glued to a name.
        if not space and not _ATTACHABLE.search(h.group(0)):
            continue
        if _ko_name_ok(name, attached=not space, cue=False):
            spans.append(m.span(1))
    for pattern in (KO_CUE_NAME, KO_SELF_NAME):
        for m in pattern.finditer(text):
            if _ko_name_ok(m.group(1), attached=False, cue=True):
                spans.append(m.span(1))
    return spans


def _ko_name_ok(name: str, *, attached: bool, cue: bool) -> bool:
    """Whether a Hangul candidate is a plausible full name rather than a common noun."""
    if name in _KO_STOP or name[-1] in _KO_STOP_LAST:
        return False
    # Two syllables ("김구") only when attached ("김구씨") or after an explicit cue.
    return len(name) >= 3 or attached or cue


def english_name_spans(text: str) -> list[tuple[int, int]]:
    """Spans of English (or Hangul) names after a title or a cue, in characters."""
    spans: list[tuple[int, int]] = []
    lower = text.lower()
    patterns = []
    if _ANY_GREETING.search(lower):
        patterns.append(EN_GREETING_NAME)
    if _ANY_TITLE.search(text):
        patterns.append(EN_TITLE_NAME)
    if _ANY_CUE.search(lower):
        patterns.append(EN_CUE_NAME)
    for pattern in patterns:
        for m in pattern.finditer(text):
            words = m.group(1).split(" ")
            while words and words[-1] in _EN_STOP:
                words.pop()
            if not words or words[0] in _EN_STOP:
                continue
            cue = m.group(0)[: m.start(1) - m.start(0)].lower()
            if cue.startswith(("this is", "contact")) and len(words) < 2:
                continue  # "This is Python" — one capitalised word is not enough here
            start = m.start(1)
            spans.append((start, start + len(" ".join(words))))
    return spans
