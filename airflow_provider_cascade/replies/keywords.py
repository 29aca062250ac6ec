"""Opt-out and opt-in keywords: which replies stop a recipient's campaigns, which resume them.

A reply is a keyword when its whole text, case-folded, with every space and the
punctuation around it removed, is one of the set: ``" Stop! "``, ``"stop"`` and
``"S T O P"`` are STOP; ``"please stop the offers"`` is not (a sentence is read by a
person, not guessed at). The defaults, in English, Ukrainian and Russian:

- opt-out: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT (``OPT OUT``), СТОП,
  ВІДПИСАТИСЯ, ВІДПИСКА, ОТПИСАТЬСЯ, ОТПИСКА;
- opt-in: START, UNSTOP, SUBSCRIBE, OPTIN (``OPT IN``), СТАРТ, ПІДПИСАТИСЯ, ПОДПИСАТЬСЯ.

A connection sets its own with the extras ``opt_out_keywords`` / ``opt_in_keywords``
(comma-separated); they replace the defaults.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from enum import Enum

__all__ = ["DEFAULT_OPT_IN", "DEFAULT_OPT_OUT", "Keywords", "Meaning", "normalise"]

DEFAULT_OPT_OUT = (
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT",
    "СТОП", "ВІДПИСАТИСЯ", "ВІДПИСКА", "ОТПИСАТЬСЯ", "ОТПИСКА",
)  # fmt: skip
DEFAULT_OPT_IN = (
    "START", "UNSTOP", "SUBSCRIBE", "OPTIN", "СТАРТ", "ПІДПИСАТИСЯ", "ПОДПИСАТЬСЯ",
)  # fmt: skip

_DROPPED = str.maketrans("", "", string.whitespace + "\u00a0\u200b-_")
_AROUND = string.punctuation + "«»“”„…¡¿"


class Meaning(str, Enum):
    """What a reply asks of its sender's subscription."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


def normalise(text: str) -> str:
    """A reply's text as keywords are compared: no spaces, no punctuation around it,
    case-folded (``" Stop! "`` -> ``"stop"``)."""
    return text.translate(_DROPPED).strip(_AROUND).casefold()


class Keywords:
    """The keyword sets of one connection.

    :param opt_out: words that opt a number out (default :data:`DEFAULT_OPT_OUT`).
    :param opt_in: words that lift an opt-out (default :data:`DEFAULT_OPT_IN`).
    :raises ValueError: a word in both sets, or one that is empty once normalised.
    """

    def __init__(
        self,
        opt_out: Iterable[str] = DEFAULT_OPT_OUT,
        opt_in: Iterable[str] = DEFAULT_OPT_IN,
    ) -> None:
        self.opt_out = _words(opt_out, "opt_out_keywords")
        self.opt_in = _words(opt_in, "opt_in_keywords")
        both = self.opt_out & self.opt_in
        if both:
            raise ValueError(f"{', '.join(sorted(both))} is both an opt-out and an opt-in keyword")

    def meaning(self, text: str) -> Meaning | None:
        """What ``text`` asks: an opt-out, an opt-in, or nothing (None)."""
        word = normalise(text)
        if word in self.opt_out:
            return Meaning.OPT_OUT
        if word in self.opt_in:
            return Meaning.OPT_IN
        return None


def _words(words: Iterable[str], name: str) -> frozenset[str]:
    found = set()
    for word in words:
        normal = normalise(word)
        if not normal:
            raise ValueError(f"{name}: {word!r} is empty once spaces and punctuation go")
        found.add(normal)
    return frozenset(found)
