"""A free-form introduction read for what can pre-fill a profile.

Members write "Company: Olympus" or "会社：オリンパス" on a line of its own,
often with list bullets or bold labels. Only such labelled lines are read;
everything else is left for the member to fill in.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from bot.intros.profile import LIMITS

# Labels, folded (NFKC, casefold), per profile field.
LABELS: Final[dict[str, tuple[str, ...]]] = {
    "display_name": ("name", "名前", "氏名", "お名前"),
    "company": ("company", "employer", "organisation", "organization", "会社", "会社名", "勤務先", "所属"),
    "role": ("role", "title", "job", "position", "役職", "職種", "仕事", "肩書き", "肩書"),
    "industry": ("industry", "sector", "業界", "業種"),
    "location": ("location", "based in", "city", "場所", "所在地", "拠点", "在住", "居住地"),
    "timezone": ("timezone", "time zone", "タイムゾーン"),
    "interests": ("interests", "interest", "topics", "興味", "関心", "興味のあること", "関心事"),
    "offer": ("offer", "can offer", "i can help with", "提供できること", "できること"),
    "seek": ("seek", "looking for", "seeking", "探していること", "求めていること"),
    "bio": ("bio", "about", "about me", "自己紹介", "ひとこと", "一言"),
}
_BY_LABEL: Final = {label: name for name, labels in LABELS.items() for label in labels}
# A label, then ":" (NFKC turns "：" into ":"); bullets, numbers and Markdown emphasis around it are skipped.
_LINE = re.compile(r"^[\s>*_~`\-•・●◦+#0-9.)]*(?P<label>[^:*_~`]{1,24}?)[\s*_~`]*:[\s*_~`]*(?P<value>.*)$")


def parse_intro(text: str) -> dict[str, str]:
    """The profile fields a message names, each as written and cut to its limit; the first wins."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(unicodedata.normalize("NFKC", line))
        if match is None:
            continue
        name = _BY_LABEL.get(" ".join(match["label"].casefold().split()))
        value = match["value"].strip().strip("*_~`").strip()
        if name is None or not value or name in found:
            continue
        found[name] = value[: LIMITS[name]]
    return found
