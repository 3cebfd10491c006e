"""Text as the guardrails read it: Unicode tricks that hide a word or a number from a pattern undone.

`normalize_for_matching(text)` applies, in order:

1. NFKC: compatibility forms become their plain letters and digits (fullwidth `４１１１`,
   mathematical `𝐢𝐠𝐧𝐨𝐫𝐞`, ligatures `ﬁ`, superscripts, circled digits, odd spaces).
2. Invisible characters removed: every format character (Unicode category Cf: zero-width
   space/joiners, soft hyphen, word joiner, BOM, bidi controls, tag characters), variation
   selectors and the combining grapheme joiner.
3. Digits of every script (category Nd: Arabic-Indic, Devanagari, Bengali, ...) become ASCII digits.
4. Homoglyphs folded: letters of other scripts that look like an ASCII letter or digit
   (Cyrillic `а е о р с і`, Greek `Α Ι Ο ο`, Cherokee, Armenian, ...) become that ASCII
   character. The table comes from Unicode's confusables list (the `confusable-homoglyphs`
   package), keeping single characters whose confusable is an ASCII letter or digit; accented
   Latin letters (`é`, `ñ`) are not folded, so tenant patterns written with them still match.

The result is used for matching only; what is forwarded to the model is the caller's text as sent.
"""

from __future__ import annotations

import json
import string
import unicodedata
from functools import cache
from importlib import resources

INVISIBLE_MARKS = frozenset({0x034F, *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)})  # CGJ, variation selectors


def normalize_for_matching(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    return text.translate(_FOLDING)


class _Folding(dict):
    """A str.translate table over all of Unicode, filled on demand. Characters that change (a few
    thousand) and unchanged ones of the Basic Multilingual Plane are kept, so the table stays
    bounded (at most 65,536 entries of the BMP) whatever callers send."""

    def __missing__(self, code: int) -> str | None:
        character = chr(code)
        category = unicodedata.category(character)
        if category == "Cf" or code in INVISIBLE_MARKS:
            folded = None
        elif category == "Nd":
            folded = str(unicodedata.decimal(character))
        else:
            folded = _homoglyphs().get(character)
            if folded is None:
                if code > 0xFFFF:
                    raise LookupError(code)  # unchanged, and not kept
                folded = character
        self[code] = folded
        return folded


_FOLDING = _Folding()


@cache
def _homoglyphs() -> dict[str, str]:
    """Single non-Latin characters -> the ASCII letter or digit they are confusable with.

    Unicode's list maps every I-like glyph to `l`; an upper-case one (Greek `Ι`, Cyrillic `І`)
    becomes `I` instead, so `Ιgnore` reads as `Ignore`, not `lgnore`.
    """
    confusables = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    folded: dict[str, str] = {}
    for ascii_character in string.ascii_letters + string.digits:
        for entry in confusables.get(ascii_character, []):
            glyph = entry["c"]
            if (
                len(glyph) == 1
                and not glyph.isascii()
                and not unicodedata.name(glyph, "LATIN").startswith("LATIN")
                and not unicodedata.normalize("NFKC", glyph).isascii()
            ):
                folded.setdefault(glyph, "I" if ascii_character == "l" and glyph.isupper() else ascii_character)
    return folded
