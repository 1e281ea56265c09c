"""Compiled patterns, word tables and checksum validators behind ``megacity.safety.pii``.

Everything here is an immutable constant built once at import: regexes, frozensets of
context words, and pure validators (Luhn, RRN checksum and birth date, IBAN mod-97).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re

# Digits never sit next to these in a free-standing number (ASCII only: Hangul may follow).
_NB = r"(?<![0-9A-Za-z+.\-])"
_NA = r"(?![0-9A-Za-z\-]|\.\d)"

# ── Phone numbers ──────────────────────────────────────────────────────────────────────
KR_MOBILE = re.compile(
    _NB + r"(?:\+82[- ]?(?:\(0\)[- ]?)?|0)1[016789][-. ]?\d{3,4}[-. ]?\d{4}" + _NA
)
_AREA = r"(?:2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70|80|50[2-8])"
# Area codes: Seoul 02, regions 031-064, internet phones 070, toll free 080, 050x.
KR_LANDLINE = re.compile(
    _NB + r"(?:(?:\+82[- ]?(?:\(0\)[- ]?)?|0)" + _AREA + r"[-. ]?|\(0" + _AREA + r"\) ?)"
    r"\d{3,4}[-. ]?\d{4}" + _NA
)
# Nationwide service numbers (1588-1234, 1644-…, 1800-…); always written with a separator.
KR_SERVICE = re.compile(_NB + r"(1(?:5[4-9]\d|6\d\d|8\d\d))[- ](\d{4})" + _NA)
# North American: +1 / 1- optional, area code [2-9]xx, the last separator required.
NANP = re.compile(_NB + r"(?:\+?1[-. ]?)?(?:\(\d{3}\) ?|[2-9]\d{2}[-. ]?)\d{3}[-. ]\d{4}" + _NA)
# Other countries: +CC then 2-5 groups; Korea (+82) and NANP (+1) have their own patterns.
INTERNATIONAL = re.compile(_NB + r"\+(?!82|1)\d{1,3}(?:[-. ]?\d{1,4}){2,5}" + _NA)

# ── Resident registration numbers ──────────────────────────────────────────────────────
RRN = re.compile(
    r"(?<![0-9A-Za-z\-])(\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(-?)(\d)(\d{6})"
    r"(?![0-9A-Za-z\-])"
)
RRN_CONTEXT = re.compile(
    r"주민|RRN|resident\s+registration|외국인\s?등록|registration\s+(?:no|number)", re.IGNORECASE
)
_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
_RRN_CENTURY = {"9": 1800, "0": 1800, "1": 1900, "2": 1900, "5": 1900, "6": 1900}

# ── E-mail ─────────────────────────────────────────────────────────────────────────────
EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)

# ── Payment cards: 4-4-4-4(-1..3) or Amex 4-6-5 / Diners 4-6-4, one separator style ────
_CARD_GROUPED = "|".join(
    rf"\d{{4}}{s}\d{{4}}{s}\d{{4}}{s}\d{{4}}(?:{s}\d{{1,3}})?|\d{{4}}{s}\d{{6}}{s}\d{{4,5}}"
    for s in ("-", " ")
)
CARD = re.compile(r"(?<![0-9A-Za-z.\-])(?:" + _CARD_GROUPED + r"|\d{13,19})(?![0-9A-Za-z\-])")

# ── Bank accounts ──────────────────────────────────────────────────────────────────────
ACCOUNT_NUMBER = re.compile(
    r"(?<![0-9A-Za-z.,:/\-])\d{2,16}(?:[- ]\d{1,7}){0,4}(?![0-9A-Za-z\-]|[.,]\d)"
)
ACCOUNT_CONTEXT = re.compile(
    r"은행|계좌|입금|송금|이체|환불|예금주|국민|신한|우리|하나|농협|수협|신협|기업|IBK|KB|NH|"
    r"SC제일|씨티|새마을|우체국|카카오\s?뱅크|토스\s?뱅크|케이\s?뱅크|산업|"
    r"bank|account|acct|a/c|iban|deposit|wire|checking|savings|chase|wells\s+fargo|hsbc|citi",
    re.IGNORECASE,
)
# Numbers near these words are order/exam/ID numbers, not accounts.
ACCOUNT_NEGATIVE = re.compile(
    r"주문|송장|운송장|택배|학번|수험|사업자|접수|고시|회원번호|order|invoice|tracking|isbn|ticket",
    re.IGNORECASE,
)
# Hyphen group lengths Korean banks print; such a number is an account even without context.
ACCOUNT_SHAPES = frozenset(
    {
        (3, 3, 6),  # 신한, 케이뱅크
        (4, 3, 6),  # 우리
        (3, 6, 5),  # 하나
        (6, 2, 6),  # 국민, 우체국
        (4, 2, 7),  # 카카오뱅크
        (3, 4, 4, 2),  # 농협
        (3, 6, 2, 3),  # 기업
        (3, 2, 6),  # SC제일
        (4, 4, 4, 1),  # 새마을금고
    }
)
IBAN = re.compile(
    r"(?<![0-9A-Za-z])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![0-9A-Za-z])"
)

# ── IP addresses ───────────────────────────────────────────────────────────────────────
IPV4 = re.compile(r"(?<![0-9A-Za-z.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9A-Za-z]|\.\d)")
IPV6 = re.compile(r"(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Za-z:])")
# "version 1.2.3.4" or "section 10.1.2.3" is a dotted number, not an address.
IP_NEGATIVE = re.compile(
    r"(?:버전|버젼|절|단원|version|ver\.?|section|chapter|§)\s*$", re.IGNORECASE
)

# ── Addresses ──────────────────────────────────────────────────────────────────────────
_PROVINCE = (
    r"서울특별시|서울시|서울|부산광역시|부산시|부산|대구광역시|대구시|대구|인천광역시|인천시|인천|"
    r"광주광역시|광주시|광주|대전광역시|대전시|대전|울산광역시|울산시|울산|세종특별자치시|세종시|세종|"
    r"경기도|경기|강원특별자치도|강원도|강원|충청북도|충북|충청남도|충남|전북특별자치도|전라북도|전북|"
    r"전라남도|전남|경상북도|경북|경상남도|경남|제주특별자치도|제주도|제주"
)
# 시/군/구; one-syllable names only for the districts that really have them (중구, 동구 …).
_ADMIN = r"(?:[중동서남북]구|[가-힣]{2,5}(?:시|군|구))"
_TOWN = r"(?:[가-힣]{1,5}(?:읍|면)\s+)?"
_ROAD = r"[가-힣A-Za-z0-9]{1,12}(?<!으)(?:로|길)(?:\s?\d{1,4}번?길)?\s*\d{1,5}(?:-\d{1,5})?"
_LOT = r"[가-힣0-9]{1,8}(?:동|리|가)\s*(?:산\s?)?\d{1,5}(?:-\d{1,5})?(?:\s?번지)?"
# After the number only a particle or punctuation may follow (not "3명", "12쪽").
_KR_AFTER = r"(?=$|[^0-9A-Za-z가-힣\-]|에|으로|로|이|입니|에서|까지|근처|쪽|앞|의)"
_DETAIL = (
    r"(?:,?[ ](?:[가-힣A-Za-z]{1,12}[ ])?(?:[A-Za-z0-9]{1,4}동[ ]?)?(?:지하[ ]?)?"
    r"\d{1,4}(?:층|호)(?:[ ]?\d{1,5}호)?)?"
)
KR_ADDRESS = re.compile(
    "".join(
        (
            r"(?<![가-힣])",
            rf"(?:(?:{_PROVINCE})\s+(?:{_ADMIN}\s+){{0,3}}|(?:{_ADMIN}\s+){{1,3}})",
            _TOWN,
            rf"(?:{_ROAD}|{_LOT})",
            _KR_AFTER,
            _DETAIL,
        )
    )
)
POSTAL = re.compile(
    r"(?:우편\s?번호|postal\s+code|post\s?code|zip\s?code|zip)\s*[:：]?\s*(\d{5})(?!\d)",
    re.IGNORECASE,
)
_STREET = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Parkway|Pkwy|Terrace|"
    r"Court|Ct|Place|Pl|Square|Sq|Highway|Hwy|Close|Crescent"
)
EN_ADDRESS = re.compile(
    r"(?<![0-9A-Za-z])\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\s+){1,3}(?:" + _STREET + r")\b\.?"
    r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl|#)\.?\s*[A-Za-z0-9\-]+)?"
    r"(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+){0,2})?"
    r"(?:,?\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?|\s+[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})?"
)

# Cheap gates: one scan for digit runs decides which number finders can match at all.
DIGIT_RUN = re.compile(r"\d+")
KR_ADDRESS_GATE = re.compile(r"[로길동리가]\s?\d")
EN_ADDRESS_GATE = re.compile(r"\d[A-Za-z]?\s+[A-Z]")


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_ok(digits: str) -> bool:
    """Luhn-valid, 13-19 digits, a real issuer's first digit, and not a binary/constant string."""
    return (
        13 <= len(digits) <= 19
        and digits[0] in "234569"
        and len(set(digits)) > 2
        and luhn_ok(digits)
    )


def rrn_checksum_ok(digits: str) -> bool:
    """Whether a 13-digit RRN satisfies the pre-2020 weighted mod-11 check digit."""
    total = sum((ord(c) - 48) * w for c, w in zip(digits, _RRN_WEIGHTS, strict=False))
    return (11 - total % 11) % 10 == ord(digits[12]) - 48


def rrn_birth_ok(yy: str, mm: str, dd: str, code: str, today: _dt.date) -> bool:
    """Whether YYMMDD with the 7th (sex/century) digit is a real, past date of birth."""
    century = _RRN_CENTURY.get(code, 2000 if code in "3478" else 0)
    if not century:
        return False
    try:
        born = _dt.date(century + int(yy), int(mm), int(dd))
    except ValueError:
        return False
    return born <= today


def iban_ok(candidate: str) -> bool:
    """Whether an IBAN (spaces allowed) passes the ISO 13616 mod-97 check."""
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def ip_ok(candidate: str) -> bool:
    """Whether the candidate is an IPv4/IPv6 address that can point at a person.

    Loopback and unspecified addresses (127.0.0.1, ::1, 0.0.0.0) identify nobody, and
    masking them would hide a server's own bind address from its operators.
    """
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)
