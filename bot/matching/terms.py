"""Words as matching compares them: interest tags as keys, and what members offer and seek as phrases of terms.

A tag is one key compared whole ("supply chain"); an offer or a seek is free text, split into phrases
("Vietnam market entry, hiring、採用"), and two phrases are about the same thing when they share a term.
Latin words of three letters or more are terms; Japanese and Chinese, written without spaces, give
their two-character runs (bigrams) instead, so "ベトナム進出" and "ベトナム市場参入" share ベト, トナ and ナム.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from bot.i18n import fold

# Phrases in an offer or a seek are separated by commas (also 、 and ，), semicolons (also ；), the
# middle dot (・ and its half-width form), line breaks, and "and"/"&" between words. A slash is kept
# inside a phrase ("AI/ML"): its words are terms of that one phrase anyway.
_PHRASE_SEPARATORS: Final = re.compile(r"[,、，;；・･\n\r]+|\s+(?:and|&)\s+", re.IGNORECASE)

# Ideographs, hiragana and katakana (with the prolonged sound mark ー); each script's runs are cut
# apart, so a particle between two nouns ("市場への参入") does not glue them into one run.
_KANJI: Final = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆"
_HIRAGANA: Final = "\u3041-\u309f"
_KATAKANA: Final = "\u30a0-\u30ff\u31f0-\u31ff"
_TOKENS: Final = re.compile(
    rf"(?P<kanji>[{_KANJI}]+)|(?P<hiragana>[{_HIRAGANA}]+)|(?P<katakana>[{_KATAKANA}]+)"
    rf"|(?P<word>[^\W_{_KANJI}{_HIRAGANA}{_KATAKANA}]+)"
)
# A hiragana run this short is a particle or a word ending (の, を, から), not a topic.
_SHORTEST_HIRAGANA_RUN: Final = 3
_SHORTEST_WORD: Final = 3
# Words that say nothing about a topic; the ≥3 letter rule already drops "to", "of", "in"...
_STOPWORDS: Final = frozenset({
    "and", "the", "for", "with", "from", "into", "onto", "about", "any", "all", "our", "your", "you", "who",
    "how", "what", "want", "wants", "looking", "seeking", "seek", "need", "needs", "help", "can", "are",
    "was", "were", "been", "being", "have", "has", "had", "this", "that", "these", "those", "them", "they",
    "their", "some", "more", "other", "others", "etc", "via", "per", "not", "but", "also", "like", "just",
    "people", "someone", "anyone", "things",
})


def phrases(text: str) -> tuple[str, ...]:
    """An offer or a seek as its phrases, as the member wrote them (trimmed), each once, in order."""
    seen: set[str] = set()
    found: list[str] = []
    for piece in _PHRASE_SEPARATORS.split(text):
        phrase = " ".join(piece.split())
        key = fold(phrase)
        if key and key not in seen:
            seen.add(key)
            found.append(phrase)
    return tuple(found)


# Members write the same phrases over and over ("hiring", "資金調達"): each is split once.
@lru_cache(maxsize=1 << 16)
def phrase_terms(phrase: str) -> frozenset[str]:
    """The terms a phrase is compared by: folded words of three letters or more (stopwords dropped),
    and the bigrams of each run of kanji or katakana (of hiragana when the run is long enough to be a
    word). A lone kanji or kana gives no term: alone it says too little to match on."""
    terms: set[str] = set()
    for match in _TOKENS.finditer(fold(phrase)):
        run = match.group()
        if match.lastgroup == "word":
            if len(run) >= _SHORTEST_WORD and run not in _STOPWORDS:
                terms.add(run)
        elif match.lastgroup != "hiragana" or len(run) >= _SHORTEST_HIRAGANA_RUN:
            terms.update(run[i:i + 2] for i in range(len(run) - 1))
    return frozenset(terms)
