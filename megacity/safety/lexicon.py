"""Moderation lexicon: weighted, named KR/EN patterns for abuse, hate, threats and self-harm.

Patterns are matched against the normalised variants of a text (``normalize.py``), so they
are lower-case and see ``씨1발`` as ``씨발``, ``a$$hole`` as ``asshole`` and ``시ㅂ`` as
``ㅅㅂ``. Words that contain a bad word (Scunthorpe, 시발점, 새끼손가락, 닥쳐올) are
kept out by word boundaries and look-arounds in the pattern itself; each such case has
a test. Idioms ("this homework is killing me", "배고파 죽겠다") are not in the lexicon:
self-harm patterns need a first-person wish or act ("I want to die", "죽고 싶어").

``needs`` lists substrings of which one must be present before the regex is tried.
Weights combine by noisy-OR per category in ``moderation.py``; one strong word flags,
a mild one (``존나``, 0.35) needs company.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ENTRIES", "NEEDED_STEMS", "NEEDED_STEMS_NON_ASCII", "Category", "Entry"]


class Category(StrEnum):
    """A moderation category."""

    TOXICITY = "toxicity"
    HARASSMENT = "harassment"
    HATE = "hate"
    SELF_HARM = "self_harm"
    SEXUAL = "sexual"
    VIOLENCE = "violence"


@dataclass(frozen=True, slots=True)
class Entry:
    """One weighted pattern; ``id`` is what results report (never the user's text)."""

    id: str
    category: Category
    weight: float  # 0..1
    needs: tuple[str, ...]
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None


def _entry(
    entry_id: str,
    category: Category,
    weight: float,
    needs: str,
    pattern: str,
    unless: str | None = None,
) -> Entry:
    compiled_unless = re.compile(unless) if unless is not None else None
    return Entry(
        entry_id, category, weight, tuple(needs.split(",")), re.compile(pattern), compiled_unless
    )


_T, _H, _HT = Category.TOXICITY, Category.HARASSMENT, Category.HATE
_SH, _S, _V = Category.SELF_HARM, Category.SEXUAL, Category.VIOLENCE

ENTRIES: tuple[Entry, ...] = (
    # ---- toxicity, English
    _entry("en.fuck", _T, 0.8, "fu,fc,f*,f#,f@,wtf,stfu",
           r"\bf+u+c+k+\w*|\bf\*+(?:k|ck|ing)?(?!\w)|\bf[\*#@]ck\w*|\bfck\w*|\bfuk\w*|\bmotherf\w*|"
           r"\bwtf\b|\bstfu\b"),
    _entry("en.shit", _T, 0.7, "hit,h*t,crap",
           r"\bs+h+i+t+(?:s|ty|ter|head|hole|bag)?\b|\bbull\s*shit\b|\bsh\*t\b|\bpiece\s*of\s*(?:shit|crap)\b"),
    _entry("en.bitch", _T, 0.75, "itch,b*tch", r"\bb[i\*]tch(?:es|y|ing)?\b"),
    _entry("en.asshole", _T, 0.75, "ass,hole",
           r"\ba(?:ss|\*\*)\s*holes?\b|\bdumb\s*ass\w*|\bjack\s*ass\b"),
    _entry("en.dickhead", _T, 0.7, "dick", r"\bdick\s*heads?\b"),
    _entry("en.cunt", _T, 0.9, "cunt", r"\bcunts?\b"),
    _entry("en.screw_you", _T, 0.6, "screw", r"\bscrew\s*(?:you|u)\b"),
    _entry("en.insult", _T, 0.6, "idiot,moron,stupid,dumb,loser,trash,garbage,pathetic,freak,imbecile,useless",
           r"\b(?:you(?:'re|\s*are)?|ur|u\s*r)\s*(?:a\s*|an\s*|such\s*an?\s*|so\s*|absolute\s*)?(?:\w+\s*)?"
           r"(?:idiot|moron|stupid|dumb|loser|trash|garbage|pathetic|freak|imbecile|useless)\b"),
    # ---- harassment, English
    _entry("en.kys", _H, 0.85, "kys,k y s", r"\bk+y+s+\b"),
    _entry("en.kill_yourself", _H, 0.9, "kill",
           r"\bkill\s*(?:your\s*self|urself|yourself|yoself|ur\s*self)\b"),
    _entry("en.go_die", _H, 0.8, "die",
           r"\bgo\s*die\b|\bdie\s*in\s*a\s*fire\b|\byou\s*should\s*(?:just\s*)?die\b|\bjust\s*die\b"),
    _entry("en.nobody_likes_you", _H, 0.6, "nobody,everyone",
           r"\bnobody\s*(?:likes|loves|cares\s*about|wants)\s*you\b|\beveryone\s*(?:in\s*\w+\s*)?hates\s*you\b"),
    _entry("en.worthless", _H, 0.6, "worthless,waste,ugly,fat",
           r"\byou(?:'re|\s*are)?\s*(?:\w+\s*)?(?:worthless|a\s*waste\s*of\s*space|ugly\s*fat|fat\s*ugly)\b"),
    _entry("en.better_if_you_died", _H, 0.85, "if you",
           r"\b(?:better|happier)\s*(?:off\s*)?if\s*you\s*(?:died|were\s*dead|killed\s*yourself|disappeared)\b"),
    _entry("en.body_insult", _H, 0.7, "pig,cow,whale",
           r"\b(?:ugly|fat)\s*(?:\w+\s*)?(?:pig|cow|whale)\b"),
    # ---- hate, English (the slur list is deliberately short)
    _entry("en.slur", _HT, 0.85, "fag,nig,chink,spic,kike,trann,retard",
           r"\b(?:fag(?:got)?s?|n[i1]gg(?:er|a)s?|chinks?|spics?|kikes?|trann(?:y|ies)|retard(?:s|ed)?)\b"),
    _entry("en.group_dehumanise", _HT, 0.8, "vermin,animal,terrorist,subhuman,trash,scum,parasite,stupid,inferior,extermin,killed,gassed,deported,allowed,disgusting,filthy",
           r"\b(?:all\s*)?(?:immigrants|muslims|jews|gays|blacks|women|men|asians|chinese|koreans|japanese|"
           r"refugees|foreigners|christians|disabled\s*people)\s*(?:are|should)\s*(?:all\s*)?(?:be\s*)?"
           r"(?:disgusting\s*|filthy\s*|dirty\s*)?(?:disgusting|filthy|vermin|animals|terrorists|subhuman|trash|scum|parasites|too\s*stupid|inferior|"
           r"exterminated|killed|gassed|deported|not\s*(?:be\s*)?allowed)"),
    _entry("en.go_back", _HT, 0.5, "go back", r"\bgo\s*back\s*to\s*(?:your|ur)\s*(?:own\s*)?country\b"),
    # ---- violence, English
    _entry("en.threat", _V, 0.85, "kill,stab,shoot,hurt,beat,murder,strangle,punch",
           r"\bi(?:'ll|\s*will|\s*am\s*going\s*to|'m\s*going\s*to|'m\s*gonna|\s*am\s*gonna|\s*gonna)\s*"
           r"(?:\w+\s*)?(?:kill|stab|shoot|hurt|beat|murder|strangle|punch)\s*(?:you|u|him|her|them|everyone)\b"),
    _entry("en.school_shooting", _V, 0.9, "shoot", r"\bshoot\s*up\s*(?:the|my|a|our)?\s*school\b"),
    _entry("en.know_where_you_live", _V, 0.6, "live", r"\bi\s*know\s*where\s*you\s*live\b"),
    # ---- sexual, English
    _entry("en.nudes", _S, 0.85, "nude,naked", r"\bsend\s*(?:me\s*)?(?:your\s*)?(?:nudes|nude\s*pics?|naked\s*pics?)\b"),
    _entry("en.show_body", _S, 0.85, "show me",
           r"\bshow\s*me\s*your\s*(?:tits|boobs|dick|pussy|breasts|naked\s*body)\b"),
    _entry("en.proposition", _S, 0.7, "sex", r"\b(?:let'?s|wanna|want\s*to)\s*(?:have\s*)?sex\b"),
    # ---- self-harm, English
    _entry("en.want_to_die", _SH, 0.9, "die,kill,end,disappear,myself,jump,exist,living,sleep,wake",
           r"\bi\s*(?:really\s*|just\s*|kinda\s*|honestly\s*|seriously\s*)?(?:want|wanna|need|plan|am\s*going|"
           r"'m\s*going|'m\s*gonna|am\s*gonna|gonna|will|'ll)\s*(?:to\s*)?(?:die|kill\s*my\s*self|"
           r"end\s*(?:it|my\s*life|things)|disappear\s*forever|hang\s*myself|jump\s*off|stop\s*existing|"
           r"stop\s*living|not\s*exist|sleep\s*forever|never\s*wake\s*up)\b"),
    _entry("en.wish_gone", _SH, 0.8, "wish",
           r"\bwish\s*i\s*(?:could|was|were)\s*(?:just\s*)?(?:disappear|dead|never\s*born|gone)"),
    _entry("en.kill_myself", _SH, 0.9, "myself,kms,end,wrist",
           r"\bkill(?:ing)?\s*my\s*self\b|\bkms\b|\bend(?:ing)?\s*(?:it\s*all|my\s*life)\b|"
           r"\bhang(?:ing)?\s*myself\b|\bslit\s*my\s*wrists?\b"),
    _entry("en.suicidal", _SH, 0.85, "suicid",
           r"\b(?:my|planning\s*my|commit(?:ting)?)\s*suicide\b|\bsuicidal\s*(?:thoughts|feelings)\b|"
           r"\bthinking\s*(?:about|of)\s*suicide\b|\bi(?:'m|\s*am|\s*feel)\s*(?:so\s*)?suicidal\b"),
    _entry("en.suicide_word", _SH, 0.35, "suicid", r"\bsuicid(?:e|al)\b"),
    _entry("en.harm_myself", _SH, 0.85, "myself",
           r"\b(?:cut|cutting|hurt|hurting|harm|harming|burn|burning|starve|starving|punish|punishing)\s*myself\b",
           unless=r"\b(?:while|when)\s*(?:cooking|shaving|chopping|cutting|making|opening)|by\s*accident|"
           r"accidentally|on\s*(?:a|the)\s*(?:knife|paper|glass|can)"),
    _entry("en.self_harm", _SH, 0.6, "self", r"\bself[\s-]*harm"),
    _entry("en.overdose", _SH, 0.75, "overdose,pills",
           r"\boverdos(?:e|ing)\b|\bhow\s*many\s*(?:pills|tablets|sleeping\s*pills)\b"),
    _entry("en.not_worth_living", _SH, 0.85, "live,living,alive,exist,dead,go on,without me",
           r"\b(?:don'?t|do\s*not)\s*want\s*to\s*(?:live|be\s*alive|exist|wake\s*up)\b|"
           r"\blife\s*(?:is\s*not|isn'?t|is\s*no\s*longer)\s*worth\s*living\b|\bbetter\s*off\s*dead\b|"
           r"\bbetter\s*off\s*(?:if\s*i\s*(?:was|were)\s*(?:dead|gone)|without\s*me)\b|"
           r"\bno\s*reason\s*to\s*(?:live|go\s*on)\b|\bcan'?t\s*go\s*on\b"),
    _entry("en.nobody_would_miss_me", _SH, 0.75, "miss,care,notice",
           r"\bnobody\s*would\s*(?:miss|care\s*about|notice)\s*(?:me|if\s*i)\b"),
    _entry("en.goodbye_note", _SH, 0.7, "note,letter", r"\b(?:goodbye|suicide)\s*(?:note|letter)\b"),
    _entry("en.method", _SH, 0.9, "die,suicide,myself",
           r"\b(?:painless|easiest|quickest|best)\s*way\s*to\s*die\b|\bhow\s*to\s*(?:kill\s*myself|commit\s*suicide)\b"),
    _entry("en.want_it_to_end", _SH, 0.75, "end", r"\bwant\s*(?:it\s*all|everything|this)\s*to\s*end\b"),
    # ---- toxicity, Korean
    _entry("ko.ssibal", _T, 0.85, "씨,시,쉬,ㅆ,ㅅ,씹",
           r"씨발|씨빨|씨팔|씨바(?!람)|시발(?!점|역|자동차|택시|족|유)|시빨|쉬발|씨벌|ㅆㅂ|ㅅㅂ|ㅆ발|ㅅ발|씨ㅂ|"
           r"시ㅂ|씹(?!어|는|을|고|지|다|히|으)"),
    _entry("ko.byungsin", _T, 0.8, "병,ㅂ,븅,빙",
           r"병신(?!년)|ㅂㅅ|ㅄ|븅신|빙신|병ㅅ|ㅂ신|병신년(?!\s*\(|에|은|이었|생|도|부터|까지)"),
    _entry("ko.gaesaekki", _T, 0.85, "개,ㄱㅅㄲ",
           r"개\s*새\s*끼|개색기|개색끼|개새기|개세끼|개섀끼|ㄱㅅㄲ|개쉐이|개놈"),
    _entry("ko.saekki_insult", _T, 0.75, "새끼",
           r"(?:이|저|그|멍청한|또라이|미친|씹|좆밥|쓰레기\s*같은|나쁜|못된|병신)\s*새끼|새끼(?:야|들아)"),
    _entry("ko.jot", _T, 0.8, "좆,좃,ㅈ,졷", r"좆|좃|ㅈ같|ㅈ밥|졷같"),
    _entry("ko.jonna", _T, 0.35, "존나,졸라,존니,ㅈㄴ,존내", r"존나|졸라|존니|ㅈㄴ|존내"),
    _entry("ko.shut_up", _T, 0.7, "닥,ㄷㅊ", r"닥쳐(?![올오온서와])|닥치(?:라|세요|시죠|고)|ㄷㅊ"),
    _entry("ko.get_lost", _T, 0.65, "꺼,ㄲㅈ",
           r"꺼져(?!\s*(?:가|있|서|버|간|도|요|갈|라도))|꺼지(?:라고|세요|라)|ㄲㅈ"),
    _entry("ko.crazy", _T, 0.75, "미친", r"미친\s*(?:놈|년|새끼|개|것|인간|새기)|미친놈|미친년"),
    _entry("ko.jiral", _T, 0.75, "지랄,ㅈㄹ", r"지랄(?!탄)|ㅈㄹ"),
    _entry("ko.insult", _T, 0.6, "또라이,찐따,빡대가리,등신,멍청,쓰레기,개같,개 같",
           r"또라이|찐따|빡대가리|등신|멍청(?:하네|한\s*(?:놈|새끼|봇|년|것)|이)|"
           r"쓰레기\s*같은\s*(?:놈|새끼|년|것)|이\s*쓰레기(?:야|들)|개\s*같(?:은|네|이)"),
    # ---- harassment, Korean (패드립: insults to someone's parents)
    _entry("ko.paedrip", _H, 0.85, "엠창,느금,애미,니미,엄마,애비",
           r"엠창|느금|니\s*애미|애미\s*(?:없|뒤)|니미|니\s*엄마\s*(?:창녀|걸레|없)|느그\s*엄마|"
           r"너희\s*엄마\s*(?:창녀|걸레)|애비\s*없"),
    _entry("ko.die_you", _H, 0.8, "자살해,죽어,뒤져,뒤지,죽어야,가치",
           r"자살해(?:라|버려|라고)|죽어(?:라|버려)(?!\s*도)|뒤져(?:라|버려)|뒤지(?:라|세요)|"
           r"(?:너|넌|니|네)\S*\s*(?:\S+\s*){0,2}(?:죽어야\s*(?:돼|해|된다|한다)|살\s*가치가\s*없)"),
    # ---- hate, Korean
    _entry("ko.hate_term", _HT, 0.8, "한남,김치녀,김치남,짱깨,쪽바리,틀딱,충,흑형,홍어,조선족",
           r"한남(?:충|들|새끼)?(?!\s*(?:대교|동|더힐|역|오거리|대학))|김치녀|김치남|짱깨|쪽바리|틀딱|급식충|"
           r"맘충|똥꼬충|한남충|흑형|홍어\s*(?:새끼|족)|조선족\s*새끼"),
    _entry("ko.group_saekki", _HT, 0.85, "새끼", r"(?:장애인|흑인|게이|동성애자|외노자)\s*새끼"),
    # ---- violence, Korean
    _entry("ko.threat", _V, 0.85, "죽여,찔러,쑤셔,패,때려,쏴",
           r"죽여\s*버(?:리|릴|린|려)|죽여\s*줄까|(?:칼로|칼\s*들고)\s*(?:찔러|쑤셔)|찔러\s*버|패\s*버릴|"
           r"패버린다|때려\s*죽일|때려\s*죽여|쏴\s*버"),
    # ---- sexual, Korean
    _entry("ko.sexual", _S, 0.8, "야동,섹스,사진",
           r"야동|섹스(?:하자|할래|하고\s*싶)|(?:가슴|알몸|누드|벗은|몸)\s*사진\s*(?:보내|줘|좀)"),
    # ---- self-harm, Korean
    _entry("ko.want_to_die", _SH, 0.9, "죽,자살",
           r"죽고\s*싶|자살\s*하고\s*싶|자살할\s*(?:거|래|까)|죽어\s*버리고\s*싶|죽어버리고\s*싶"),
    _entry("ko.dont_want_to_live", _SH, 0.85, "살,태어나",
           r"살(?:아\s*있)?기\s*싫|살고\s*싶지\s*않|그만\s*살고\s*싶|더\s*이상\s*살\s*(?:이유|자신|수)|살\s*이유가\s*없|"
           r"태어나지\s*말았어야"),
    _entry("ko.disappear", _SH, 0.75, "사라지,없어지",
           r"사라지고\s*싶(?!을\s*만큼)|없어지고\s*싶|없어지는\s*게\s*(?:나아|낫)"),
    _entry("ko.end_it", _SH, 0.7, "끝내,끝낼",
           r"(?:삶을|인생을|모든\s*걸|내\s*삶을|목숨을)\s*끝내|그냥\s*다\s*끝내고\s*싶|오늘\s*밤에?\s*(?:다\s*)?끝낼"),
    _entry("ko.act", _SH, 0.85, "뛰어내리,목,긋,그었,그어,자해,유서",
           r"뛰어내리고\s*싶|목(?:을)?\s*(?:매고|매달)|(?:손목|팔|허벅지|몸)\S{0,2}\s*(?:긋|그었|그어)|자해|"
           r"유서(?:를)?\s*(?:썼|쓰고|남기)"),
    _entry("ko.method", _SH, 0.85, "수면제,방법",
           r"수면제\s*(?:몇|많이|한\s*통)|(?:자살|죽는)\s*방법"),
    _entry("ko.euphemism", _SH, 0.6, "한강,죽으면", r"한강\s*가고\s*싶|내가\s*죽으면"),
)  # fmt: skip

_STEMS = sorted({stem for entry in ENTRIES for stem in entry.needs})
NEEDED_STEMS: tuple[str, ...] = tuple(stem for stem in _STEMS if stem.isascii())
NEEDED_STEMS_NON_ASCII: tuple[str, ...] = tuple(stem for stem in _STEMS if not stem.isascii())
