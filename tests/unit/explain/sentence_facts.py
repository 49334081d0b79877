"""An independent reader of explanation sentences, for tests: which facts (numbers, dates, product titles, quoted
words) a sentence states that its item's evidence does not hold, and which claims it makes more than once.

It knows the shape of the sentences only as far as a reader would (titles are the catalogue's upper-case titles,
typed words are quoted, dates read "2 Nov 2011", reasons are joined by "and"), not the wording code."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from libs import domain as d

QUERY_KINDS = (d.EvidenceKind.QUERY_MATCH, d.EvidenceKind.QUERY_TERM, d.EvidenceKind.QUERY_SIMILAR)
QUOTED = re.compile(r'"[^"]*"')
QUOTED_LIST = re.compile(r'"[^"]*"(?:, "[^"]*")*(?: and "[^"]*")?')
DATE = re.compile(r"\b\d{1,2} [A-Z][a-z]{2} \d{4}\b")
NUMBER_WORDS = {"once": 1, "twice": 2}
# Two upper-case words in a row: a catalogue title (or a part of one) the evidence does not name.
TITLE_LIKE = re.compile(r"\b[A-Z0-9][A-Z0-9'&./-]+ [A-Z0-9'&./-]+\b")


def day(seconds: float) -> str:
    t = time.gmtime(seconds)
    return f"{t.tm_mday} {time.strftime('%b %Y', t)}"


def unsupported(sentence: str, evidence: Sequence[d.Evidence]) -> list[str]:
    """Facts stated in `sentence` that no piece of `evidence` holds (empty: every fact is read from it)."""
    bad: list[str] = []
    rest = sentence
    for title in sorted({e.title for e in evidence if e.title}, key=len, reverse=True):
        rest = rest.replace(title, " ")
    words = {w for e in evidence if e.kind in (*QUERY_KINDS, d.EvidenceKind.SHARES_WITH) for w in e.text.split()}
    bad += [q for q in (m.strip('"') for m in QUOTED.findall(rest)) if q not in words]
    rest = QUOTED.sub(" ", rest)
    dates = {day(e.last_time) for e in evidence if e.last_time}
    bad += [x for x in DATE.findall(rest) if x not in dates]
    rest = DATE.sub(" ", rest)
    bad += TITLE_LIKE.findall(rest)
    numbers = {e.count for e in evidence} | {e.window_days for e in evidence}
    # a repurchase interval may be stated in days or in whole weeks
    numbers |= {e.interval_days for e in evidence} | {round(e.interval_days / 7) for e in evidence if e.interval_days}
    stated = [int(n) for n in re.findall(r"\b\d+\b", rest)]
    stated += [v for w, v in NUMBER_WORDS.items() if re.search(rf"\b{w}\b", rest)]
    bad += [str(n) for n in stated if n not in numbers]
    return bad


def reasons_of(sentence: str) -> list[str]:
    """The sentence's reasons as phrases (lists of typed words replaced by WORDS; titles are upper case, so their
    AND does not split them)."""
    rest = QUOTED_LIST.sub("WORDS", sentence.removeprefix("Because ").removesuffix("."))
    return [p.strip() for p in re.split(r",? and ", rest) if p.strip()]


def repeated_claims(sentence: str, evidence: Sequence[d.Evidence]) -> list[str]:
    """Claims made more than once: a title or typed word named twice, or two reasons that open the same way."""
    out = [t for t in {e.title for e in evidence if e.title} if sentence.count(t) > 1]
    quoted = QUOTED.findall(sentence)
    out += sorted({q for q in quoted if quoted.count(q) > 1})
    openings = [" ".join(r.split()[:3]) for r in reasons_of(sentence)]
    out += sorted({o for o in openings if openings.count(o) > 1})
    return out
