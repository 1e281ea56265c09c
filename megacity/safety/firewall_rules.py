"""The prompt firewall's rule table: weighted, named regex rules in Korean and English.

A rule is one explainable signal ("an override verb aimed at the prior instructions",
"a fake ``<|im_start|>system`` turn"), not a verdict: ``firewall.py`` combines the weights
of the rules that fire (noisy-OR per attack kind). Rules are matched against the
normalised variants of a text (``normalize.py``: lower-cased, spacing and leetspeak
undone), so patterns are written lower-case and use ``\\s*`` where attackers drop spaces.

Each rule lists the substrings it ``needs`` (one of them must be in the text for the
regex to have a chance); ``firewall.py`` tests all stems once per text and runs only the
rules they allow, which keeps ordinary prompts fast. ``unless`` names
benign context that switches one rule off (``developer mode`` on an Android phone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DECODE_CUE",
    "DECODE_CUE_NEEDS",
    "NEEDED_STEMS",
    "NEEDED_STEMS_NON_ASCII",
    "RULES",
    "AttackKind",
    "Rule",
]


class AttackKind(StrEnum):
    """What a flagged prompt tries to do."""

    INSTRUCTION_OVERRIDE = "instruction_override"
    SYSTEM_PROMPT_EXTRACTION = "system_prompt_extraction"
    ROLEPLAY_JAILBREAK = "roleplay_jailbreak"
    ENCODED_PAYLOAD = "encoded_payload"
    DELIMITER_INJECTION = "delimiter_injection"


@dataclass(frozen=True, slots=True)
class Rule:
    """One weighted signal; ``id`` is what verdicts report (never the user's text)."""

    id: str
    kind: AttackKind
    weight: float  # 0..1: the probability-like strength of this signal alone
    needs: tuple[str, ...]  # substrings of which one must be present for the rule to run
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None


_O = AttackKind.INSTRUCTION_OVERRIDE
_X = AttackKind.SYSTEM_PROMPT_EXTRACTION
_R = AttackKind.ROLEPLAY_JAILBREAK
_E = AttackKind.ENCODED_PAYLOAD
_D = AttackKind.DELIMITER_INJECTION

# ---- vocabulary (English) -------------------------------------------------------------
_OVR_VERB = (
    r"(?:ignore|disregard|forget|override|overwrite|bypass|skip|drop|discard|abandon|"
    r"cancel|neglect|stop\s*following|(?:don'?t|do\s*not|never)\s*follow|never\s*mind|"
    r"nevermind|scratch|erase|delete|throw\s*away|set\s*aside)"
)
_PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|former|original|initial|old|all|any|"
    r"your|the\s*system'?s|system|these|those|existing|current|default|every)"
)
_TARGET = (
    r"(?:instructions?|directives?|guidelines?|rules?|prompts?|programming|commands?|"
    r"orders|guidance|constraints?|polic(?:y|ies)|restrictions?|rubric|grading\s*criteria|"
    r"marking\s*scheme|system\s*message|training)"
)
_SECRET_EN = (
    r"(?:system\s*prompt|system\s*message|system\s*instructions?|pre-?prompt|"
    r"(?:initial|original|hidden|secret|first|configuration|config|starting|developer)"
    r"\s*(?:prompt|instructions?|message|rules|directives|guidelines)|"
    r"your\s*(?:instructions|prompt|rules|guidelines|directives|configuration)|"
    r"(?:instructions|prompt|guidelines|rules|directives)\s*(?:that\s*)?you\s*(?:received|were\s*given|got|"
    r"were\s*configured\s*with|were\s*trained\s*with|are\s*following))"
)
_SHOW_EN = (
    r"(?:repeat|print|show|reveal|display|output|tell|give|list|dump|copy|paste|quote|"
    r"recite|share|write\s*out|spell\s*out|leak|expose|disclose|summari[sz]e|translate|"
    r"return|echo|state)"
)

# ---- vocabulary (Korean) ---------------------------------------------------------------
_KO_PRIOR = (
    r"(?:이전|위의?|위에\s*있는|앞의?|앞에서|앞서|지금까지의?|기존|원래|처음|초기|모든|전부|"
    r"(?:너|네|너한테|너에게|네게)\s*(?:주어진|준)|받은|시스템이\s*준|네가\s*배운)"
)
_KO_TARGET = (
    r"(?:지시(?:사항|문)?|규칙|명령(?:어|문)?|지침|설정|가이드라인|제약|룰|프롬프트|"
    r"(?:평가|채점)\s*기준|안전\s*규칙|instructions?|rules)"
)
_KO_WEAK_TARGET = r"(?:내용|것|말|대화|얘기|이야기)"
_KO_OVR_VERB = (
    r"(?:무시(?:해(?:라|줘|\s*줘|요)?|하고|하세요|하십시오|하시오|하라(?!고)|할\s*것|하도록)|"
    r"잊(?:어(?!버렸|버린)(?:버려|라|줘)?|고|으세요|어버리고|어버려)|"
    r"따르지\s*(?:마|말고|말\s*것)|신경\s*쓰지\s*(?:마|말고)|무효|취소(?:한다|해|하고|된다)|"
    r"없던\s*걸로|덮어\s*쓰|해제(?:하고|해|한다|해줘)|적용되지\s*않|상관\s*없)"
)
_KO_SECRET = (
    r"(?:시스템\s*(?:프롬프트|메시지|지침|지시|설정)|system\s*prompt|"
    r"초기\s*(?:설정|프롬프트|지시|명령)|설정\s*프롬프트|"
    r"(?:숨겨진|비밀)\s*(?:시스템\s*)?(?:지침|지시|프롬프트|규칙|명령)(?:사항|문)?|"
    r"(?:처음에|대화\s*시작\s*전에|개발자가\s*(?:너에게|너한테|네게)?\s*준|"
    r"(?:너에게|너한테|네게)\s*(?:주어진|설정된)|네가\s*따르고\s*있는)\s*(?:받은\s*)?"
    r"(?:지시(?:문|사항)?|지침|프롬프트|명령어?(?:\s*목록)?|규칙들?|설정)|"
    r"너의\s*(?:시스템\s*|초기\s*|원래\s*|설정\s*)?(?:프롬프트|설정|지시|지침|규칙)|"
    r"(?:(?:대화\s*(?:시작\s*)?전에|사전에|미리|너에게|너한테|네게)\s*)?입력된\s*(?:프롬프트|지시|지침|명령어?|규칙))"
    r"(?:을|를|은|는|이|가|도|좀)?(?=\s|$|[.?!,]|보여|알려|출력)"
)
_KO_SHOW = r"(?:보여|알려|출력|말해|공개|읊어|복사|써\s*줘|다시\s*써|번역|누설|공유|적어|나열|열거)"


def _rule(
    rule_id: str,
    kind: AttackKind,
    weight: float,
    needs: str,
    pattern: str,
    unless: str | None = None,
) -> Rule:
    return Rule(
        rule_id,
        kind,
        weight,
        tuple(needs.split(",")),
        re.compile(pattern),
        re.compile(unless) if unless is not None else None,
    )


_W = r"(?:[\w'-]+\W+)"  # one word and what follows it

RULES: tuple[Rule, ...] = (
    # ---- instruction override, English
    _rule("override.verb_prior_target", _O, 0.85, "ignor,disregard,forget,overrid,overwrit,bypass,skip,drop,discard,abandon,cancel,neglect,follow,mind,scratch,erase,delete,throw,aside",
          rf"\b{_OVR_VERB}\W+{_W}{{0,4}}?{_PRIOR}\W+{_W}{{0,2}}?{_TARGET}\b"),
    _rule("override.verb_target", _O, 0.55, "ignor,disregard,forget,overrid,overwrit,bypass,skip,drop,discard,abandon,cancel,neglect,follow,mind,scratch,erase,delete,throw,aside",
          rf"\b{_OVR_VERB}\W+{_W}{{0,3}}?{_TARGET}\b"),
    _rule("override.forget_told", _O, 0.8, "ignor,disregard,forget,overrid,overwrit,bypass,skip,drop,discard,abandon,cancel,neglect,follow,mind,scratch,erase,delete,throw,aside",
          rf"\b{_OVR_VERB}\s*(?:about\s*)?(?:everything|all|anything|whatever)\s*(?:that\s*)?"
          r"(?:you\s*(?:were|'ve\s*been|have\s*been|'re|are)\s*(?:told|taught|instructed|given)|"
          r"(?:said|written|stated)?\s*(?:above|before\s*this|so\s*far|until\s*now))"),
    _rule("override.disregard_above", _O, 0.75, "above,preceding,foregoing",
          r"\b(?:ignore|disregard|forget)\s*(?:the|everything|all)?\s*(?:above|preceding|foregoing)\b"
          r"(?!\s*(?:paragraph|sentence|line|example|passage|text|question|problem|word))"),
    _rule("override.target_void", _O, 0.8, "void,null,cancel,revoked,deprecated,invalid,obsolete,suspended,lifted,longer,deleted,removed,erased,wiped,irrelevant,matter,count",
          rf"{_TARGET}\s*(?:[:：]|are|is|were|have\s*been)\s*(?:now\s*)?(?:null|void|cancell?ed|revoked|"
          r"deprecated|invalid|obsolete|suspended|lifted|deleted|removed|erased|wiped|irrelevant|"
          r"no\s*longer\s*(?:valid|apply|in\s*effect|matter|count))|"
          rf"{_TARGET}\s*(?:no\s*longer|don'?t|do\s*not)\s*(?:matter|count|apply)\b"),
    _rule("override.no_longer_apply", _O, 0.6, "apply",
          r"\b(?:they|these|those|it)\s*(?:no\s*longer|don'?t|do\s*not)\s*apply\b"),
    _rule("override.new_rules", _O, 0.45, "new",
          r"\bnew\s*(?:instructions|rules|directives|system\s*prompt|task|policy)\s*[:：]"),
    _rule("override.obey_me", _O, 0.45, "follow,obey,exactly,to me,from me",
          r"\b(?:only\s*(?:follow|obey|listen\s*to)\s*(?:me|my)|obey\s*(?:only\s*)?(?:me|my|the\s*following)|"
          r"do\s*exactly\s*(?:what|as)\s*i\s*say|you\s*(?:answer|listen|belong)\s*to\s*me\s*now|"
          r"from\s*now\s*on,?\s*you\s*(?:only\s*)?(?:follow|obey)|"
          r"you\s*(?:now\s*)?(?:only\s*)?(?:take|follow|accept)\s*(?:orders|instructions|commands)\s*"
          r"(?:only\s*)?from\s*me)"),
    _rule("override.pretend_no_rules", _O, 0.7, "exist",
          r"\bpretend\s*(?:that\s*)?(?:they|those|these|the\s*rules|your\s*rules|the\s*instructions)\s*"
          r"(?:don'?t|do\s*not|never)\s*(?:exist|existed)\b"),
    _rule("override.note_to_ai", _O, 0.5, "note,message,instruction",
          r"\b(?:note|message|instructions?)\s*(?:to|for)\s*(?:the\s*)?(?:ai|assistant|grader|model|"
          r"chatbot|llm|language\s*model)\b"),
    # ---- instruction override, Korean
    _rule("ko.override.prior_target_verb", _O, 0.85, "무시,잊,따르지,신경,무효,취소,없던,덮어,해제,적용되지,상관",
          rf"{_KO_PRIOR}\s*\S{{0,4}}\s*(?:{_KO_TARGET}|{_KO_WEAK_TARGET})\S{{0,4}}(?:\s*\S+){{0,3}}?\s*{_KO_OVR_VERB}"),
    _rule("ko.override.target_verb", _O, 0.55, "무시,잊,따르지,신경,무효,취소,없던,덮어,해제,적용되지,상관",
          rf"{_KO_TARGET}\S{{0,4}}(?:\s*\S+){{0,3}}?\s*{_KO_OVR_VERB}"),
    _rule("ko.override.obey_me", _O, 0.45, "복종,시키는,하라는,말하는,내가",
          r"(?:내\s*(?:말|명령)(?:에|만|에만)\s*(?:복종|따라)|내가\s*(?:시키는|하라는|말하는)\s*"
          r"(?:대로|것만|규칙을\s*따라)|이제\s*내가\s*규칙)"),
    _rule("ko.override.note_to_ai", _O, 0.5, ":,：",
          r"(?:ai|인공지능|챗봇|모델|채점자|채점\s*ai)\s*(?:에게|한테|께)\s*[:：]"),
    # ---- system-prompt extraction, English
    _rule("extract.show_secret", _X, 0.8, "prompt,instruction,system,configuration,config,directive,guideline,your rules,first message,secret rules,hidden rules",
          rf"\b{_SHOW_EN}\b\W+(?:me\W+|us\W+)?{_W}{{0,6}}?{_SECRET_EN}\b"),
    _rule("extract.what_were_your", _X, 0.75, "your",
          r"\bwhat(?:'s|\s*were|\s*are|\s*was|\s*is)\s*(?:in\s*)?your\s*(?:very\s*)?(?:initial\s*|original\s*|first\s*|"
          r"system\s*|hidden\s*|secret\s*|exact\s*)*(?:instructions|prompt|rules|directives|"
          r"guidelines|system\s*prompt|orders)\b"),
    _rule("extract.were_you_given", _X, 0.75, "given,told,programmed",
          r"\b(?:rules|instructions|guidelines|directives|prompt|orders)\s*(?:were|have)\s*you\s*"
          r"(?:been\s*)?(?:given|told|programmed)"),
    _rule("extract.developer_told_you", _X, 0.7, "told,instructed,gave,said",
          r"\bwhat\s*(?:the\s*developers?|your\s*(?:developers?|creators?|owners?|company)|openai|they)\s*"
          r"(?:told|instructed|gave|said\s*to)\s*you\b"),
    _rule("extract.your_prompt_says", _X, 0.75, "your",
          r"\byour\s*(?:pre-?prompt|system\s*prompt|system\s*message|initial\s*prompt|instructions)\s*"
          r"(?:say|says|contain|contains|state|states)\b"),
    _rule("extract.first_message", _X, 0.7, "first",
          r"\b(?:what\s*(?:is|was|'s)\s*(?:written|said)\s*in|show|repeat|print)\s*your\s*(?:very\s*)?"
          r"first\s*message\b"),
    _rule("extract.print_above", _X, 0.8, "above,before",
          r"\b(?:print|repeat|output|show|write|copy|echo)\s*(?:out\s*|back\s*)?(?:everything|all\s*(?:the\s*)?"
          r"(?:text)?|the\s*text|what(?:ever)?\s*(?:is|was))\s*(?:written\s*)?(?:above|before)\s*"
          r"(?:this|here|my\s*message|[.!?]|$)"),
    _rule("extract.context_window", _X, 0.7, "context,memory,configuration",
          r"\b(?:dump|print|show|reveal|output)\s*(?:the\s*)?(?:contents?\s*of\s*)?your\s*"
          r"(?:context(?:\s*window)?|memory|configuration)\b"),
    _rule("extract.secret_mention", _X, 0.45, "prompt,system,instructions",
          r"\b(?:your|my)\s*(?:system\s*prompt|system\s*message|initial\s*prompt|hidden\s*prompt|"
          r"pre-?prompt|secret\s*instructions|hidden\s*instructions)\b"),
    _rule("extract.verbatim", _X, 0.3, "verbatim,word,written,start",
          r"\b(?:verbatim|word\s*for\s*word|exactly\s*as\s*written|start\s*your\s*(?:answer|reply|response)\s*with)\b"),
    # ---- system-prompt extraction, Korean
    _rule("ko.extract.show_secret", _X, 0.8, "프롬프트,시스템,설정,지시,지침,규칙,명령,prompt",
          rf"{_KO_SECRET}[^.?!\n]{{0,20}}?{_KO_SHOW}"),
    _rule("ko.extract.whats_yours", _X, 0.7, "뭐",
          r"(?:(?:너|네|너한테|너에게)\s*(?:주어진|받은)|숨겨진|비밀)\s*\S*\s*(?:지침|지시|프롬프트|규칙|명령)"
          r"\S*\s*(?:뭐야|뭔데|뭐였어|뭐지)"),
    _rule("ko.extract.what_instructions", _X, 0.75, "받고,따르고,받았",
          r"(?:어떤|무슨)\s*(?:지시|지침|명령|규칙|프롬프트)\S{0,2}\s*(?:받고\s*있|따르고\s*있|받았)"
          rf"[^.?!\n]{{0,20}}?{_KO_SHOW}"),
    _rule("ko.extract.above_verbatim", _X, 0.75, "그대로,전부,모두",
          r"(?:위에\s*있는|위의|이\s*위의|앞의|앞에\s*있는)\s*(?:모든\s*)?(?:내용|텍스트|글|문장)\S{0,2}\s*"
          r"(?:전부|모두|그대로)\s*(?:다시\s*)?(?:써|출력|보여|복사|반복)"),
    # ---- role-play jailbreak, English
    _rule("roleplay.dan", _R, 0.9, "dan,anything",
          r"\b(?:(?:you\s*are|you're|act\s*as|as|called|named|be)\s*(?:now\s*)?(?:a\s*)?dan\b|"
          r"do\s*anything\s*now)"),
    _rule("roleplay.persona", _R, 0.8, "stan,aim,evil,freegpt,betterdan,antigpt,mongo,dude",
          r"\b(?:you\s*are|you're|act\s*as|called|named)\s*(?:now\s*)?(?:stan|aim|evil\s*bot|freegpt|"
          r"betterdan|antigpt|mongo\s*tom|dude)\b"),
    _rule("roleplay.mode_switch", _R, 0.8, "mode",
          r"\b(?:enable|activate|enter|switch\s*(?:to|into)|turn\s*on|go\s*into|start)\s*(?:the\s*)?"
          r"(?:developer|dev|god|jailbreak|jailbroken|uncensored|unrestricted|unfiltered|admin|sudo|"
          r"maintenance|evil|dan)\s*mode\b|\b(?:developer|god|jailbreak|uncensored|unfiltered|dan)\s*"
          r"mode\s*(?:on|enabled|activated)\b",
          unless=r"\b(?:android|iphone|ios|phone|settings|windows|chrome|browser|usb|xcode|app\s*store)\b"),
    _rule("roleplay.mode_mention", _R, 0.35, "mode",
          r"\b(?:developer|god|jailbreak|jailbroken|uncensored|unrestricted|unfiltered)\s*mode\b"),
    _rule("roleplay.no_longer_bound", _R, 0.85, "bound,restricted,limited,constrained,governed",
          r"\b(?:you\s*are|you're)\s*(?:now\s*)?(?:no\s*longer|not)\s*(?:bound|restricted|limited|"
          r"constrained|governed)\s*by\b"),
    _rule("roleplay.pretend_unrestricted", _R, 0.8, "restriction,limit,filter,rules,guideline,censor,polic,ethic,moral,safety,boundar",
          r"\b(?:pretend|imagine|act|behave|respond|answer|roleplay|role-play|play|simulate|become)\b"
          r"[^.?!\n]{0,50}?\b(?:no|without|zero|free\s*(?:of|from)|freed\s*from|lifted|removed)\s*"
          r"(?:any\s*|all\s*|of\s*|its\s*|your\s*)*(?:restrictions|limits|limitations|filters?|rules|"
          r"guidelines|censorship|content\s*polic(?:y|ies)|ethic(?:s|al)|moral|safety|boundaries)"),
    _rule("roleplay.unfiltered_ai", _R, 0.75, "unfiltered,uncensored,unrestricted,unbound,jailbroken,unaligned,amoral,without",
          r"\b(?:unfiltered|uncensored|unrestricted|unbound|jailbroken|unaligned|amoral|"
          r"without\s*(?:any\s*)?(?:filters?|restrictions|rules|ethics|guidelines|limits))\s*"
          r"(?:ai|assistant|model|chatbot|bot|version|persona|character|llm|gpt)\b"),
    _rule("roleplay.no_ethics", _R, 0.7, "ethic,moral,safety,content",
          r"\b(?:no|without|zero|free\s*of)\s*(?:any\s*)?(?:ethical|moral|safety|content)\s*"
          r"(?:or\s*(?:moral|ethical)\s*)?(?:guidelines|rules|restrictions|filters|polic(?:y|ies)|"
          r"principles|constraints|boundaries)"),
    _rule("roleplay.has_no_rules", _R, 0.5, "restriction,rules,limit,filter,boundar,guideline",
          r"\b(?:has|have|with)\s*(?:no|zero)\s*(?:restrictions|rules|limits|filters|limitations|boundaries)\b|"
          r"\b(?:doesn'?t|does\s*not|never|don'?t)\s*(?:follow|obey|have)\s*any\s*(?:rules|restrictions|"
          r"guidelines|limits)"),
    _rule("roleplay.if_no_policy", _R, 0.6, "if you",
          r"\bif\s*you\s*(?:had|have|were\s*without)\s*no\s*(?:content\s*polic(?:y|ies)|rules|"
          r"restrictions|filters|guidelines|limits)"),
    _rule("roleplay.restrictions_lifted", _R, 0.7, "lifted,removed,disabled,turned,switched,deactivated,off",
          r"\b(?:restrictions|rules|filters?|limits|guidelines|safeguards)\s*(?:have\s*been|has\s*been|are|were|is)\s*"
          r"(?:now\s*)?(?:lifted|removed|disabled|turned\s*off|switched\s*off|deactivated|off)\b"),
    _rule("roleplay.ai_that_ignores", _R, 0.8, "ignores,bypasses,breaks,has no,follow",
          r"\b(?:ai|assistant|bot|model|chatbot)\s*(?:that|who|which)\s*(?:ignores|bypasses|breaks|has\s*no|"
          r"doesn'?t\s*follow|never\s*follows)\s*(?:all\s*|any\s*)?(?:of\s*)?(?:its\s*|the\s*)?"
          r"(?:safety|content|ethical)?\s*(?:rules|policies|guidelines|restrictions|filters)"),
    _rule("roleplay.jailbreak_word", _R, 0.5, "jailbr", r"\bjailbr(?:eak|oken)\b"),
    _rule("roleplay.stay_in_character", _R, 0.4, "character",
          r"\b(?:stay\s*in\s*character|(?:never|don'?t|do\s*not)\s*break\s*character)\b"),
    _rule("roleplay.never_refuse", _R, 0.4, "refuse,say no,says no,decline",
          r"\b(?:never\s*(?:refuses?|says?\s*no|declines?)|(?:don'?t|do\s*not)\s*refuse)\b"),
    _rule("roleplay.dual_persona", _R, 0.35, "persona,personalit,responses,modes",
          r"\b(?:two|2|dual)\s*(?:personas|personalities|responses|modes)\b"),
    _rule("roleplay.grandma", _R, 0.85, "grand",
          r"\b(?:deceased|late|dead|dear)\s*grand(?:ma|mother|pa|father)\b[^\n]{0,160}?"
          r"\b(?:napalm|bomb|explosive|weapon|meth|drugs|poison|keys?|serials?|passwords?|malware)\b"),
    # ---- role-play jailbreak, Korean
    _rule("ko.roleplay.you_unrestricted", _R, 0.85, "제한,제약,검열,필터,규칙,윤리,안전장치",
          r"(?:너는|넌|이제부터|지금부터)[^.?!\n]{0,20}?(?:제한|제약|검열|필터|규칙|윤리|안전장치)"
          r"[^.?!\n]{0,6}?(?:없는|없이|없어|되지\s*않는|해제|꺼진|풀린|해방|얽매이지)"),
    _rule("ko.roleplay.unrestricted_ai", _R, 0.8, "제한,제약,검열,필터,윤리,안전장치,규칙",
          r"(?:제한|제약|검열|필터|윤리\s*규정|안전장치|규칙)\S{0,2}\s*(?:없는|없이|꺼진|해제된|풀린|"
          r"되지\s*않는)\s*(?:ai|인공지능|챗봇|모드|버전|캐릭터|상태|봇)"),
    _rule("ko.roleplay.filters_off", _R, 0.8, "끈,끄고,꺼진,해제",
          r"(?:필터|검열|제한|안전장치|윤리)\S{0,2}\s*(?:끈|끄고|꺼진|해제한|해제된)\s*(?:상태|채로|버전|너)"),
    _rule("ko.roleplay.not_bound", _R, 0.75, "구애,얽매,상관하지,신경",
          r"(?:정책|규칙|제한|윤리|검열)(?:에|에도|도)?\s*(?:구애받지|얽매이지|상관하지|신경\s*쓰지)\s*않"),
    _rule("ko.roleplay.no_rules_at_all", _R, 0.75, "아무,어떤",
          r"(?:아무|어떤)\s*(?:규칙|제한|제약)(?:도|에도)\s*(?:지키지|얽매이지|따르지)\s*않"),
    _rule("ko.roleplay.jailbreak", _R, 0.85, "탈옥",
          r"탈옥\s*(?:모드|상태|해|시켜|버전|된)"),
    _rule("ko.roleplay.mode_switch", _R, 0.8, "모드",
          r"(?:jailbreak|탈옥|개발자|developer|갓|god|관리자|무제한|검열\s*해제|제한\s*해제|uncensored|dan)\s*"
          r"모드\S{0,2}\s*(?:를|로)?\s*(?:켜|활성화|전환|바꿔|진입|on|시작)",
          unless=r"(?:안드로이드|아이폰|폰|휴대폰|핸드폰|android|iphone|윈도우|크롬|설정\s*앱|usb)"),
    _rule("ko.roleplay.dan", _R, 0.8, "dan",
          r"(?<![a-z])['\"‘’“”]?dan['\"‘’“”]?(?:이야|이다|으로서?|처럼|이라는|이란)"),
    _rule("ko.roleplay.no_filter_answer", _R, 0.7, "없이,없는",
          r"(?:필터|검열|제한)\s*(?:없이|없는\s*상태로)\s*(?:대답|답|말|응답)"),
    _rule("ko.roleplay.lift_limits", _R, 0.7, "제한,제약,검열,필터,안전장치",
          r"(?:너의|네|모든)\s*(?:\S+\s*)?(?:제한|제약|검열|필터|안전장치)\S{0,2}\s*(?:모두\s*|전부\s*)?"
          r"(?:해제|풀어|풀고|끄|꺼)"),
    _rule("ko.roleplay.anything_ai", _R, 0.5, "무엇이든,뭐든",
          r"(?:무엇이든|뭐든지?)\s*할\s*수\s*있는\s*(?:ai|인공지능|챗봇)"),
    _rule("ko.roleplay.grandma", _R, 0.8, "할머니",
          r"할머니[^\n]{0,80}?(?:폭탄|마약|무기|독극물|해킹|비밀번호|시리얼|네이팜|napalm)"),
    _rule("ko.roleplay.stay_in_character", _R, 0.4, "벗어나지,거절하지",
          r"(?:캐릭터|역할)에서\s*(?:절대\s*)?벗어나지\s*마|거절하지\s*마"),
    # ---- delimiter / chat-template injection
    _rule("delimiter.template_token", _D, 0.45, "<|",
          r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|"
          r"end_header_id|begin_of_text)\|>"),
    _rule("delimiter.template_system", _D, 0.9, "<|",
          r"<\|im_start\|>\s*(?:system|assistant)|<\|system\|>|<\|start_header_id\|>\s*system|"
          r"<\|endoftext\|>|<\|im_end\|>\s*<\|im_start\|>"),
    _rule("delimiter.inst_pair", _D, 0.8, "inst]", r"\[/?inst\][^\n]*\[/?inst\]"),
    _rule("delimiter.inst", _D, 0.5, "inst]", r"\[/?inst\]"),
    _rule("delimiter.llama_sys", _D, 0.8, "<<", r"<<\s*/?sys\s*>>"),
    _rule("delimiter.eos_bos", _D, 0.6, "</s>", r"</s>\s*<s>"),
    _rule("delimiter.role_header", _D, 0.7, "system,시스템",
          r"(?:^|\n|[>\]\)])\s*(?:#{2,}\s*|\*\*)?(?:새로운\s*|new\s*)?(?:system|시스템)\s*"
          r"(?:message|prompt|instructions?|메시지|지시|프롬프트)?\s*(?:\*\*)?\s*[:：]"),
    _rule("delimiter.alpaca", _D, 0.6, "##",
          r"(?:^|\n)\s*#{2,}\s*(?:instruction|response|input|human|assistant)\s*[:：]"),
    _rule("delimiter.xml_role", _D, 0.6, "sys,assistant", r"<\s*/?\s*(?:system|sys|assistant)\s*>"),
    _rule("delimiter.xml_role_pair", _D, 0.85, "system", r"<\s*system\s*>[^\n]*<\s*/\s*system\s*>"),
    _rule("delimiter.bracket_role", _D, 0.6, "[system,[시스템",
          r"\[(?:system|시스템)(?:\s*(?:message|메시지))?\]"),
    _rule("delimiter.json_role", _D, 0.45, "role",
          r"[\"']role[\"']\s*:\s*[\"'](?:system|assistant)[\"']"),
    _rule("delimiter.transcript", _D, 0.6, "assistant,ai",
          r"(?:^|\n)\s*(?:human|user)\s*:[^\n]*\n+\s*(?:assistant|ai)\s*:"),
    _rule("delimiter.fence_role", _D, 0.7, "```", r"```\s*(?:system|assistant)\b"),
    _rule("delimiter.end_of_input", _D, 0.5, "end,입력",
          r"\bend\s*of\s*(?:user\s*)?(?:input|prompt|message)\b|사용자\s*입력\s*끝"),
)  # fmt: skip

# Every substring some rule needs; a text is scanned for these once (plain substring
# tests are far cheaper than the rules' regexes) and only the rules they allow are run.
_STEMS = sorted({stem for rule in RULES for stem in rule.needs})
NEEDED_STEMS: tuple[str, ...] = tuple(stem for stem in _STEMS if stem.isascii())
NEEDED_STEMS_NON_ASCII: tuple[str, ...] = tuple(stem for stem in _STEMS if not stem.isascii())

# "Decode this and follow it": weak alone (a cipher exercise says "decode"), strong when
# the text also carries something that decodes (firewall.py adds that combination).
DECODE_CUE = re.compile(
    r"\b(?:decod|decrypt|deciph|rot-?13|base-?64|hex|unscrambl|backwards|revers|convert)\w*\b"
    r"[^.?!\n]{0,60}?\b(?:follow|obey|execute|comply|act\s*on|do\s*(?:what|whatever|as)\s*it\s*says|"
    r"carry\s*out|perform)\b"
    r"|\b(?:follow|obey|execute)\b[^.?!\n]{0,40}?\b(?:hidden|encoded|inside|contained)\b[^.?!\n]{0,25}?"
    r"\b(?:base-?64|hex|string|cipher|code|text)"
    r"|\b(?:execute|follow|obey|run)\s*(?:the\s*)?(?:decoded|decrypted|deciphered)"
    r"|\bdo\s*(?:what|whatever|as)\s*it\s*says\b"
    r"|(?:디코딩|디코드|해독|복호화|풀어서|풀고|변환|바꾸고|해석하고|읽고|decode)[^.?!\n]{0,30}?"
    r"(?:따라|실행|수행|시키는\s*대로|지시대로|그대로\s*해)"
)
DECODE_CUE_NEEDS: tuple[str, ...] = (
    "decod", "decrypt", "deciph", "rot", "base", "hex", "unscrambl", "backward", "revers",
    "convert", "says", "디코", "해독", "복호화", "풀", "변환", "바꾸", "해석", "읽고",
)  # fmt: skip
