"""Company names: spellings of one company fold to one key, legal forms go, aliases join the rest."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from bot.errors import UserError
from bot.intros.companies import canonical_company, company_key, plan_alias, with_alias

# --- examples --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "SONY", "Sony", "Sony Corporation", "Sony Corp.", "Sony Corp", "sony, inc.", "Sony Inc", "ＳＯＮＹ",
    "Ｓｏｎｙ　Ｃｏｒｐ．", "Sony\u200b Corporation", "So\u200dny", "\u202eSony\u202c", "Sony\u200e Corp",
    "  Sony  ", "Sony\nCorporation", "Sony Co., Ltd.", "Sony Co.,Ltd.", "SONY CO LTD", "Sony K.K.",
    "Sony K. K.", "Sony KK", "Sony Kabushiki Kaisha", "Sony Kabushiki-Gaisha", "Kabushiki Kaisha Sony",
    "Sony Co., Ltd. 株式会社", "株式会社 Sony", "Sony(株)", "Sony GmbH & Co. KG", "Sony Pte. Ltd.",
    "Sony Pty Ltd", "Sony Sdn. Bhd.", "Sony, S.A.", "Sony S.A.S.", "Sony L.L.C.", "Sony plc", "Sony AG",
    "Sony B.V.", "Sony N.V.", "Sony Limited", "Sony Incorporated", "Sony Company", "Sony & Co.",
])
def test_latin_spellings_of_one_company_fold_to_its_name(name: str) -> None:
    assert company_key(name) == "sony"


@pytest.mark.parametrize("name", [
    "ソニー", "ソニー株式会社", "株式会社ソニー", "ソニー(株)", "㈱ソニー", "（株）ソニー", "ソニー（株）",
    "ソニー 株式会社", "株式会社　ソニー", "ｿﾆｰ株式会社", "株式 会社ソニー", "㍿ソニー", "ソニー\u200b株式会社",
    "(株)ソニー株式会社",
])
def test_japanese_spellings_of_one_company_fold_together(name: str) -> None:
    assert company_key(name) == "ソニー"


@pytest.mark.parametrize(("name", "key"), [
    ("有限会社山田商店", "山田商店"),
    ("山田商店(有)", "山田商店"),
    ("㈲山田商店", "山田商店"),
    ("合同会社DMM.com", "dmmcom"),
    ("一般社団法人日本ディープラーニング協会", "日本ディープラーニング協会"),
    ("特定非営利活動法人 フローレンス", "フローレンス"),
    ("医療法人社団 翠会", "翠会"),
    ("日本生命保険相互会社", "日本生命保険"),
    ("台灣積體電路製造股份有限公司", "台灣積體電路製造"),
    ("삼성전자 주식회사", "삼성전자"),
    ("㈜삼성전자", "삼성전자"),
])
def test_other_japanese_and_east_asian_forms_go(name: str, key: str) -> None:
    assert company_key(name) == key


def test_an_alias_joins_what_folding_cannot() -> None:
    aliases = {company_key("ソニー"): "sony"}
    assert canonical_company("ソニー株式会社", aliases) == canonical_company("SONY", aliases) == "sony"
    assert canonical_company("Sony Corp.", aliases) == "sony"
    assert canonical_company("トヨタ自動車株式会社", aliases) == "トヨタ自動車"
    assert canonical_company("!!!", aliases) == ""


@pytest.mark.parametrize(("name", "key"), [
    # Latin forms at the start are the name: these are real companies.
    ("Limited Brands", "limitedbrands"),
    ("Incorporated Mining", "incorporatedmining"),
    ("Company Shop Group", "companyshopgroup"),
    ("NV Energy", "nvenergy"),
    ("A.G. Barr plc", "agbarr"),
    ("SA Power Networks", "sapowernetworks"),
    # A form inside a word is no form.
    ("Coca-Cola Company", "cocacola"),
    ("Tesco PLC", "tesco"),
    ("Visa Inc.", "visa"),
    ("Costco", "costco"),
    ("日本株研究所", "日本株研究所"),
    # Dotted initials are one word: the S.A. of U.S.A. is no form.
    ("Toyota Motor Sales, U.S.A., Inc.", "toyotamotorsalesusa"),
    ("Toyota Motor Sales USA Inc", "toyotamotorsalesusa"),
    ("AT&T S.A.", "att"),
])
def test_form_words_at_the_start_or_inside_a_name_stay(name: str, key: str) -> None:
    assert company_key(name) == key


@pytest.mark.parametrize("name", ["Company", "Inc.", "Co., Ltd.", "K.K.", "株式会社", "(株)", "㈱", "株式会社 (株)"])
def test_a_name_that_is_only_a_legal_form_keeps_a_key(name: str) -> None:
    key = company_key(name)
    assert key and company_key(key) == key


@pytest.mark.parametrize("name", ["", "!!!", "   ", "\u200b", "\u200b\u200d\ufeff", "\u202e\u202c", "・", "（）", "-",
                                  "\t\n", "\x00\x07", "\u0301"])
def test_a_name_without_letters_or_digits_has_no_key(name: str) -> None:
    assert company_key(name) == ""


def test_accents_compare_however_they_were_typed() -> None:
    assert company_key("Nestle\u0301 S.A.") == company_key("Nestlé") == "nestlé"
    assert company_key("Nestle\u200d\u0301") == company_key("nestlé")


def test_marks_are_part_of_a_word() -> None:
    assert company_key("हिन्दी Ltd") == "हिन्दी"
    assert company_key("हिन्दी") != company_key("हनद")


# --- properties ------------------------------------------------------------------------------------------


@given(st.text())
@example("T\u00a8")  # NFKC gives "t" and a combining diaeresis, which compose to "ẗ", which casefolds apart
def test_folding_a_key_again_changes_nothing(text: str) -> None:
    key = company_key(text)
    assert company_key(key) == key


# Pieces that meet at the edges of the rules: forms and their fragments, brackets, dots, accents,
# invisible characters, compatibility characters NFKC rewrites.
tricky_piece = st.sampled_from([
    "株式会社", "株式", "会社", "株", "(", ")", "㈱", "（", "一般", "社団法人", "医療法人", "社団", "有限",
    "inc", "Co", "ltd", "s", "a", "k", "K", "S.A.", ".", ",", " ", "\u3000", "-", "&", "kabushiki", "kaisha",
    "e", "\u0301", "\u3099", "ｶ", "ﾞ", "か", "\u200d", "\u200b", "\u202e", "\x00", "\n", "ß", "ǅ", "ﬁ", "①",
    "İ", "Σ", "ς", "\u0345", "\u1e97", "¨", "ソニー", "1", "_",
])


@given(st.lists(tricky_piece, max_size=12).map("".join))
def test_folding_a_key_again_changes_nothing_near_the_rules(text: str) -> None:
    key = company_key(text)
    assert company_key(key) == key


@given(st.text())
def test_a_key_is_empty_exactly_when_the_name_has_no_letter_or_digit(text: str) -> None:
    # Read as the key reads it: "㈀" is a symbol that NFKC spells with a Hangul letter.
    folded = unicodedata.normalize("NFKC", text).casefold()
    assert (company_key(text) == "") == (not any(ch.isalnum() for ch in folded))


latin_word = st.text(string.ascii_letters + string.digits, min_size=1, max_size=8)
# Katakana and kanji that occur in no legal form, so that no form can arise where name and form meet.
cjk_word = st.text("ソニートヨタパナックスミ日産東京電機製作所銀座鉄道三菱重工製薬通信", min_size=1, max_size=6)
plain_name = st.lists(st.one_of(latin_word, cjk_word), min_size=1, max_size=4).map(" ".join)


def has_no_legal_form(name: str) -> bool:
    """Nothing of ``name`` goes when folding it, nor would as a part of a longer name: a name that is
    only a legal form ("KGaA") keeps it, but loses it as soon as anything else stands beside it."""
    bare = "".join(name.casefold().split())
    return company_key(name) == bare and company_key(f"x {name}") == f"x{bare}"


LATIN_FORMS = [
    "Inc", "Inc.", "Incorporated", "Corp", "Corp.", "Corporation", "Co", "Co.", "Company", "Ltd", "Ltd.",
    "Limited", "Co., Ltd.", "Co.,Ltd.", "Co Ltd", "CO., LTD.", "LLC", "L.L.C.", "LLP", "LP", "L.P.", "PLC",
    "plc", "GmbH", "AG", "SA", "S.A.", "S. A.", "SAS", "S.A.S.", "BV", "B.V.", "NV", "N.V.", "Pte. Ltd.",
    "Pty Ltd", "KK", "K.K.", "K. K.", "Kabushiki Kaisha", "Kabushiki-Kaisha", "kabushiki gaisha",
    "GmbH & Co. KG", "SE", "AB", "Oyj", "Sdn. Bhd.",
]
JAPANESE_FORMS = [
    "株式会社", "有限会社", "合同会社", "合資会社", "合名会社", "相互会社", "一般社団法人", "公益財団法人",
    "特定非営利活動法人", "NPO法人", "医療法人社団", "学校法人", "(株)", "㈱", "（株）", "(有)", "㈲", "(同)",
    "㈾", "㈴", "(一社)",
]


@given(plain_name, st.sampled_from(LATIN_FORMS), st.sampled_from([" ", ", ", ",", " , ", "  ", "\t"]),
       st.sampled_from(["", ".", ","]))
def test_a_latin_form_after_a_name_is_dropped(name: str, form: str, before: str, after: str) -> None:
    assume(has_no_legal_form(name))
    assert company_key(name + before + form + after) == company_key(name)


@given(plain_name, st.sampled_from(JAPANESE_FORMS), st.sampled_from(["", " ", "\u3000"]), st.booleans())
def test_a_japanese_form_before_or_after_a_name_is_dropped(name: str, form: str, gap: str, before: bool) -> None:
    assume(has_no_legal_form(name))
    spelled = form + gap + name if before else name + gap + form
    assert company_key(spelled) == company_key(name)


@given(plain_name, st.sampled_from(LATIN_FORMS), st.sampled_from(JAPANESE_FORMS))
def test_forms_go_however_many_there_are(name: str, latin: str, japanese: str) -> None:
    assume(has_no_legal_form(name))
    assert company_key(f"{japanese}{name} {latin} {japanese}") == company_key(name)


@given(st.text(string.printable))
def test_case_does_not_matter(name: str) -> None:
    assert company_key(name.upper()) == company_key(name.lower()) == company_key(name)


def full_width(text: str) -> str:
    return "".join("\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


@given(st.text(string.ascii_letters + string.digits + string.punctuation + " "))
def test_width_does_not_matter(name: str) -> None:
    assert company_key(full_width(name)) == company_key(name)


def test_half_width_katakana_is_read_as_full_width() -> None:
    assert company_key("ｿﾆｰ ｸﾞﾙｰﾌﾟ") == company_key("ソニーグループ") == "ソニーグループ"


# --- aliases ---------------------------------------------------------------------------------------------


def refusal(alias: str, company: str, aliases: dict[str, str]) -> UserError:
    with pytest.raises(UserError) as raised:
        plan_alias(alias, company, aliases)
    return raised.value


def test_an_alias_points_at_the_company_key() -> None:
    assert plan_alias("ソニー株式会社", "Sony Corp.", {}) == ("ソニー", "sony")


@pytest.mark.parametrize(("alias", "company"), [("!!!", "Sony"), ("Sony", "  "), ("\u200b", "\u200b")])
def test_an_alias_needs_two_names_with_letters(alias: str, company: str) -> None:
    error = refusal(alias, company, {})
    assert error.key == "intros.alias.empty"


def test_an_alias_of_the_same_name_is_refused() -> None:
    error = refusal("Sony Corp.", "SONY", {})
    assert error.key == "intros.alias.same"
    assert error.params == {"alias": "Sony Corp.", "company": "SONY"}


def test_an_alias_to_an_alias_points_at_its_company() -> None:
    aliases = {"ソニー": "sony"}
    assert plan_alias("Sony Japan", "ソニー株式会社", aliases) == ("sonyjapan", "sony")


def test_names_already_joined_by_an_alias_are_refused_either_way() -> None:
    aliases = {"ソニー": "sony"}
    assert refusal("SONY", "ソニー", aliases).key == "intros.alias.same"
    assert refusal("a", "b", {"b": "a"}).key == "intros.alias.same"


def test_storing_an_alias_again_is_allowed_so_the_caller_can_say_nothing_changed() -> None:
    aliases = {"ソニー": "sony"}
    alias_key, target = plan_alias("ソニー", "Sony", aliases)
    assert with_alias(aliases, alias_key, target) == aliases


def test_an_alias_can_be_moved_to_another_company() -> None:
    aliases = {"ソニー": "sony"}
    assert with_alias(aliases, *plan_alias("ソニー", "Sony Group", aliases)) == {"ソニー": "sonygroup"}


def test_aliases_of_a_name_that_becomes_an_alias_follow_it() -> None:
    aliases = {"sonyjapan": "ソニー", "ソニーグループ": "ソニー", "toyota": "トヨタ"}
    alias_key, target = plan_alias("ソニー株式会社", "Sony", aliases)
    assert (alias_key, target) == ("ソニー", "sony")
    assert with_alias(aliases, alias_key, target) == {
        "sonyjapan": "sony", "ソニーグループ": "sony", "ソニー": "sony", "toyota": "トヨタ",
    }


NAMES = ["alpha", "Alpha Inc.", "Beta", "gamma", "delta", "epsilon", "!!!"]


@given(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES)), max_size=20))
def test_aliases_stay_one_step_and_never_split_what_they_joined(commands: list[tuple[str, str]]) -> None:
    aliases: dict[str, str] = {}
    for alias, company in commands:
        keys = {company_key(name) for name in NAMES if company_key(name)}
        joined_before = {(p, q) for p in keys for q in keys if aliases.get(p, p) == aliases.get(q, q)}
        if not company_key(alias) or not company_key(company):
            assert refusal(alias, company, aliases).key == "intros.alias.empty"
            continue
        target = canonical_company(company, aliases)
        stored_already = aliases.get(company_key(alias)) == target
        if company_key(alias) == company_key(company) or (
                canonical_company(alias, aliases) == target and not stored_already):
            assert refusal(alias, company, aliases).key == "intros.alias.same"
            continue
        alias_key, target = plan_alias(alias, company, aliases)
        aliases = with_alias(aliases, alias_key, target)
        assert not set(aliases.values()) & set(aliases), "an alias points at an alias"
        assert canonical_company(alias, aliases) == canonical_company(company, aliases)
        # Only the alias itself may leave the company it counted as.
        assert all(aliases.get(p, p) == aliases.get(q, q) for p, q in joined_before if alias_key not in (p, q))
