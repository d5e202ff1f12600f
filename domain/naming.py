"""Naming an instance from what its user is doing, for the AI assistants' instance tool.

An instance is renamed when its name is generic ("Assistant Session", "New Instance") or when
the context has drifted from it; the new name is a short title made of the context's words.
"""

from __future__ import annotations

import re

GENERIC_NAMES = frozenset(
    {
        "assistant session",
        "new instance",
        "new session",
        "untitled",
        "untitled instance",
        "instance",
        "session",
        "new chat",
        "chat",
        "test instance",
    }
)
# Below this word overlap the context is about something else than the name says.
DRIFT_THRESHOLD = 0.25
MAX_TITLE_WORDS = 6
MAX_TITLE_LENGTH = 60
# A word list reads better as text than as a column of string literals.
STOPWORDS = frozenset(
    """a an the and or but of for to in on at by with from into about as is are was were be
    been being this that these those it its i me my we our you your he she they them their
    want wants need needs help please can could would should will shall do does did doing
    make making get getting let lets like just some any all new set setting up our us so
    trying try what how which who whom when where why now then also very really""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9+#&'-]*")


def words(text: str) -> list[str]:
    return [w.strip("'-") for w in _WORD.findall(text)]


def keywords(text: str) -> list[str]:
    seen: list[str] = []
    for word in words(text):
        lowered = word.lower()
        # Acronyms stay even when they spell a stop word ("US").
        stop = lowered in STOPWORDS and not word.isupper()
        if stop or len(lowered) < 2 or lowered in (s.lower() for s in seen):  # noqa: PLR2004
            continue
        seen.append(word)
    return seen


def similarity(name: str, context: str) -> float:
    """Share of the name's keywords found in the context (0: unrelated, 1: all there)."""
    named = {w.lower() for w in keywords(name)}
    if not named:
        return 0.0
    found = {w.lower() for w in keywords(context)}
    return round(len(named & found) / len(named), 2)


def is_generic(name: str) -> bool:
    return name.strip().lower() in GENERIC_NAMES or not keywords(name)


def title_from(context: str) -> str:
    """A short descriptive name: the context's first keywords, in title case."""
    chosen = keywords(context)[:MAX_TITLE_WORDS]
    if not chosen:
        return "Assistant Session"
    title = " ".join(w if w.isupper() else w[:1].upper() + w[1:] for w in chosen)
    return title[:MAX_TITLE_LENGTH].rstrip()


def rename_decision(name: str, context: str) -> tuple[bool, str, float]:
    """Whether to rename, the new name, and the similarity that decided it."""
    score = similarity(name, context)
    if is_generic(name) or score < DRIFT_THRESHOLD:
        new_name = title_from(context)
        return new_name.lower() != name.strip().lower(), new_name, score
    return False, name, score
