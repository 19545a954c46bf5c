"""Company names folded to one key, so that "Sony Corp.", "SONY" and "ＳＯＮＹ" count as one company, and
the aliases admins add to join what folding cannot ("ソニー" → "Sony").

The key is only ever compared, never shown: members see the name they typed.
It is the name's letters, digits and combining marks (width and case folded,
invisible characters dropped) without the legal form the company happens to
be registered as. Folding a key again gives the same key, so a key stored
today still matches after it has passed through here a second time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

from bot.errors import UserError
from bot.i18n import shorten

_Words = tuple[str, ...]
_ALNUM_RUN: Final = re.compile(r"[^\W_]+")


def _spellings(written: Iterable[str]) -> frozenset[_Words]:
    """Each form as the words it is compared with: as written, and run together into one word, so that
    "S.A.", "S A" and "SA", or "Kabushiki-Kaisha" and "Kabushikikaisha", are all the one form."""
    forms: set[_Words] = set()
    for spelling in written:
        words = tuple(_ALNUM_RUN.findall(unicodedata.normalize("NFKC", spelling).casefold()))
        forms |= {words, ("".join(words),)}
    return frozenset(forms)


# Latin forms, removed as whole words at the end of a name, so that they never cut into one: "Tesco"
# keeps its "co", "Visa" its "sa". "Co., Ltd." needs no entry, as "Ltd" goes and then "Co".
_TRAILING_WORD_FORMS: Final = _spellings((
    "Inc", "Incorporated", "Corp", "Corporation", "Co", "Company", "Ltd", "Limited",
    "L.L.C.", "L.L.P.", "L.P.", "L.L.L.P.", "P.L.L.C.", "P.L.C.",
    "GmbH", "A.G.", "K.G.", "KGaA", "S.E.", "S.A.", "S.A.S.", "S.A.R.L.", "S.R.L.", "B.V.", "N.V.", "A.B.",
    "A.S.A.", "Oy", "Oyj", "Ltda", "Pte", "Pty", "Bhd", "Sdn. Bhd.",
    "K.K.", "G.K.", "Y.K.", "Kabushiki Kaisha", "Kabushiki Gaisha", "Godo Kaisha", "Godo Gaisha",
    "Yugen Kaisha", "Yugen Gaisha",
))
# At the start of a name a Latin word is usually the name itself: "Limited Brands", "Company Shop",
# "NV Energy", "A.G. Barr", "SA Power Networks", "Corporation Bank" are all real companies, while
# "Inc. Foo" or "K.K. Foo" is something nobody writes. Only the romanised Japanese forms are removed
# there, because they are the Latin spelling of 株式会社 and friends, which do lead a Japanese name
# ("Kabushiki Kaisha Toshiba"), and are no English word a name could start with.
_LEADING_WORD_FORMS: Final = _spellings((
    "Kabushiki Kaisha", "Kabushiki Gaisha", "Godo Kaisha", "Godo Gaisha", "Yugen Kaisha", "Yugen Gaisha",
))
# The bracketed abbreviations ((株), ㈱ and （株） are all "(株)" after NFKC; ㈲ ㈾ ㈴ ㈳ ㈶ ㈻ likewise)
# lead or end a name equally often. Their brackets are separators, so they are whole words like the
# Latin forms: "(株)ソニー" loses its (株), while "株" inside a name ("日本株研究所") is left alone.
_BRACKETED_FORMS: Final = _spellings((
    "(株)", "(有)", "(同)", "(合)", "(資)", "(名)", "(相)", "(社)", "(財)", "(一社)", "(一財)",
    "(公社)", "(公財)", "(特非)", "(医)", "(学)", "(福)", "(宗)", "(独)", "(주)", "(유)",
))
_TRAILING_FORMS: Final = _TRAILING_WORD_FORMS | _BRACKETED_FORMS
_LEADING_FORMS: Final = _LEADING_WORD_FORMS | _BRACKETED_FORMS
_MOST_WORDS_IN_A_FORM: Final = max(map(len, _TRAILING_FORMS | _LEADING_FORMS))
# Most names end in no form word at all; these let them through with one set lookup.
_LAST_WORDS_OF_FORMS: Final = frozenset(form[-1] for form in _TRAILING_FORMS)
_FIRST_WORDS_OF_FORMS: Final = frozenset(form[0] for form in _LEADING_FORMS)

# Japanese (and the Chinese and Korean counterparts) write the form straight against the name, at
# either end (株式会社ソニー, ソニー株式会社), so these are cut from the joined letters wherever the
# words split. The longest goes, so 一般社団法人 goes whole rather than leaving 一般 behind.
_ATTACHED_FORMS: Final = frozenset(unicodedata.normalize("NFKC", form).casefold() for form in (
    "株式会社", "有限会社", "合同会社", "合資会社", "合名会社", "相互会社", "有限責任事業組合",
    "一般社団法人", "一般財団法人", "公益社団法人", "公益財団法人", "社団法人", "財団法人",
    "特定非営利活動法人", "NPO法人", "独立行政法人", "学校法人", "医療法人社団", "医療法人財団", "医療法人",
    "社会福祉法人", "宗教法人",
    "股份有限公司", "有限公司", "주식회사", "유한회사",
))
# str.startswith and endswith take a tuple: one C call tells whether any form is there at all.
_ANY_ATTACHED_FORM: Final = tuple(_ATTACHED_FORMS)
_ATTACHED_FORM_LENGTHS: Final = sorted({len(form) for form in _ATTACHED_FORMS}, reverse=True)

# Dotted initials are one word, so that the "S.A." in "Toyota Motor Sales, U.S.A., Inc." is not read as
# the form "S.A." after a word "U". They stay apart from what follows ("S.A.Foo" is "sa foo").
_DOTTED_INITIALS: Final = re.compile(r"(?<![^\W_])[^\W\d_]\.(?:\s*[^\W\d_]\.)+")
_NOT_INITIAL: Final = re.compile(r"[.\s]")
_ASCII_WORD: Final = re.compile(r"[a-z0-9]+")
# Runs of what is neither letter nor digit: punctuation and spaces, but also the invisible characters
# and the combining marks, which need a closer look (re has no Unicode categories).
_NOT_ALNUM: Final = re.compile(r"[\W_]+")
_ALNUM: Final = re.compile(r"[^\W_]")
# Normalising is repeated until nothing changes, which takes one pass or two for any text tried (every
# code point, and fuzzed text); the bound is there so that no text, however odd, can keep the bot busy.
_ENOUGH_PASSES: Final = 4
# ASCII control characters that are not whitespace are dropped; tabs and line breaks separate words.
_ASCII_INVISIBLE: Final = {code: None for code in (*range(0x09), *range(0x0E, 0x1C), 0x7F)}


def company_key(name: str) -> str:
    """``name`` folded so that spellings of one company are equal: "Sony Corp." and "ＳＯＮＹ" are "sony",
    "株式会社ソニー" and "ソニー(株)" are "ソニー". "" when the name has no letter or digit at all,
    which callers read as "no usable company name".

    Legal forms go from the ends, again and again ("Foo GmbH & Co. KG", "Sony Co., Ltd. 株式会社"),
    but never the last thing standing: a name that is nothing but a legal form ("Company", "株式会社")
    keeps one, since an empty key would say there is no name.
    """
    words = _words(_fold(name))
    if not _has_letter_or_digit(words):
        return ""
    return _settle("".join(_without_forms(words)))


def canonical_company(name: str, aliases: Mapping[str, str]) -> str:
    """The company ``name`` counts as: its key, or the company key an admin joined that key to."""
    key = company_key(name)
    return aliases.get(key, key) if key else ""


def plan_alias(alias: str, company: str, aliases: Mapping[str, str]) -> tuple[str, str]:
    """The ``(alias_key, company_key)`` row that makes ``alias`` count as ``company``, given the
    ``aliases`` stored (alias key → company key).

    Aliases point straight at a company, never at another alias, so that one lookup is enough.
    When ``company`` is itself an alias, the row points at what it stands for. When other aliases
    point at ``alias``, they are to follow it to the new company (the store re-points them in the
    same transaction; :func:`with_alias` is the whole change), rather than the admin being refused:
    having said "ソニー is Sony", they mean everything that counted as ソニー. Storing a row that
    already exists is allowed, so the caller can say nothing changed.

    Raises ``UserError`` when either name has no letter or digit (``intros.alias.empty``), or when the
    two already count as one company (``intros.alias.same``), by folding or through an alias; storing
    that would point an alias at itself.
    """
    alias_key, named_key = company_key(alias), company_key(company)
    for name, key in ((alias, alias_key), (company, named_key)):
        if not key:
            raise UserError("intros.alias.empty", name=shorten(name))
    target = aliases.get(named_key, named_key)
    if alias_key in (named_key, target):
        raise UserError("intros.alias.same", alias=shorten(alias), company=shorten(company))
    return alias_key, target


def with_alias(aliases: Mapping[str, str], alias_key: str, company_key: str) -> dict[str, str]:
    """``aliases`` after storing a row from :func:`plan_alias`: the row itself, and every alias that
    pointed at ``alias_key`` now pointing at ``company_key``."""
    joined = {key: company_key if target == alias_key else target for key, target in aliases.items()}
    joined[alias_key] = company_key
    return joined


def _fold(name: str) -> str:
    """Width and case folded, format characters (zero-width, bidi controls) and non-space controls gone."""
    if name.isascii():
        return name.translate(_ASCII_INVISIBLE).lower()
    # Dropped before normalising: once a zero-width joiner between a letter and its accent is gone,
    # NFKC composes the two, and the key must come out already composed to stay a fixed point.
    visible = _NOT_ALNUM.sub(_without_invisible, name)
    return _normalize(visible)


def _without_invisible(match: re.Match[str]) -> str:
    return "".join(ch for ch in match[0] if not _invisible(ch))


def _invisible(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category == "Cf" or (category == "Cc" and not ch.isspace())


def _normalize(text: str) -> str:
    """NFKC, casefolded, NFKC again: casefolding can undo NFKC ("ẗ" folds to "t" and a combining
    diaeresis, which NFKC composes back), so the result is in NFKC, not always unchanged by casefold."""
    for _ in range(_ENOUGH_PASSES):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        if folded == text or _stable(folded):
            return folded
        text = folded
    return text


def _stable(text: str) -> bool:
    """Whether normalising would leave ``text`` as it is; cheaper to ask than to do."""
    return text.isascii() or (text.casefold() == text and unicodedata.is_normalized("NFKC", text))


def _words(text: str) -> list[str]:
    """The runs of letters, digits and combining marks; everything else separates them."""
    if "." in text:
        text = _DOTTED_INITIALS.sub(lambda match: _NOT_INITIAL.sub("", match[0]) + " ", text)
    if text.isascii():
        return _ASCII_WORD.findall(text)
    # Marks are kept as part of a word: Devanagari or Thai vowel signs are not separators, and
    # re's \w does not match them.
    return _NOT_ALNUM.sub(_marks_only, text).split()


def _marks_only(match: re.Match[str]) -> str:
    return "".join(ch if unicodedata.category(ch).startswith("M") else " " for ch in match[0])


def _has_letter_or_digit(words: list[str]) -> bool:
    return any(word.isalnum() or _ALNUM.search(word) for word in words)


def _without_forms(words: list[str]) -> list[str]:
    while True:
        for remove in (_drop_trailing_word_form, _drop_leading_word_form, _drop_attached_form):
            rest = remove(words)
            if rest is not None and _has_letter_or_digit(rest):
                words = rest
                break
        else:
            return words


# The longest form at an end goes ("Sdn. Bhd." whole rather than "Bhd" alone, leaving "Sdn" behind).


def _drop_trailing_word_form(words: list[str]) -> list[str] | None:
    if words[-1] not in _LAST_WORDS_OF_FORMS:
        return None
    for count in range(min(len(words), _MOST_WORDS_IN_A_FORM), 0, -1):
        if tuple(words[-count:]) in _TRAILING_FORMS:
            return words[:-count]
    return None


def _drop_leading_word_form(words: list[str]) -> list[str] | None:
    if words[0] not in _FIRST_WORDS_OF_FORMS:
        return None
    for count in range(min(len(words), _MOST_WORDS_IN_A_FORM), 0, -1):
        if tuple(words[:count]) in _LEADING_FORMS:
            return words[count:]
    return None


def _drop_attached_form(words: list[str]) -> list[str] | None:
    """Without a 株式会社-like form at the end or, failing that, the start of the joined words.

    The form is matched across word breaks ("株式 会社"), as the key has none left: were it not,
    folding the key again would find a form the first fold missed.
    """
    joined = "".join(words)
    lengths = [n for n in _ATTACHED_FORM_LENGTHS if n <= len(joined)]
    if joined.endswith(_ANY_ATTACHED_FORM):
        longest = next(n for n in lengths if joined[-n:] in _ATTACHED_FORMS)
        return _drop_chars(words, longest, from_end=True)
    if joined.startswith(_ANY_ATTACHED_FORM):
        longest = next(n for n in lengths if joined[:n] in _ATTACHED_FORMS)
        return _drop_chars(words, longest, from_end=False)
    return None


def _drop_chars(words: list[str], count: int, *, from_end: bool) -> list[str]:
    kept = list(reversed(words)) if from_end else list(words)
    while count:
        first = kept[0]
        if len(first) <= count:
            count -= len(first)
            del kept[0]
        else:
            kept[0] = first[:-count] if from_end else first[count:]
            count = 0
    return kept[::-1] if from_end else kept


def _settle(key: str) -> str:
    """``key`` as folding it again would leave it: joining words can bring an accent next to the letter
    it composes with, which NFKC then merges."""
    for _ in range(_ENOUGH_PASSES):
        if _stable(key):
            break
        settled = "".join(_words(_normalize(key)))
        if settled == key:
            break
        key = settled
    return key
