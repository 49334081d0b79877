"""What an explanation says: a sentence built only from evidence with a measured positive contribution, and a
confidence read from the fused score."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from libs import domain as d

MIN_CONTRIBUTION = 1e-4


def _phrase(ev: d.Evidence) -> str:
    return {
        d.EvidenceKind.PAST_PURCHASE: f"you bought {ev.title}",
        d.EvidenceKind.RECENT_EVENT: f"you just bought {ev.title}",
        d.EvidenceKind.CO_PURCHASE_NEIGHBOUR: f"it is often bought with {ev.title}, which you bought",
        d.EvidenceKind.REPEAT_PURCHASE: "you have bought it before",
        d.EvidenceKind.POPULARITY: "it is popular (lately, at this time of year or with customers like you)",
        d.EvidenceKind.QUERY_TERM: f'it matches "{ev.text}"',
        d.EvidenceKind.QUERY_MATCH: f'its title has {_words(ev.text)} you searched for',
        d.EvidenceKind.QUERY_SIMILAR: f'it is similar to "{ev.text}"',
        d.EvidenceKind.DISCOVERY: "you have not bought it yet and this list leans towards new products",
        d.EvidenceKind.PURCHASE_FREQUENCY: ev.text,
    }[ev.kind]


def _words(text: str) -> str:
    words = text.split()
    return f'"{words[0]}"' if len(words) == 1 else "the words " + ", ".join(f'"{w}"' for w in words)


def sentence(evidence: Sequence[d.Evidence]) -> str:
    """Names at most two positive pieces: the strongest, and a just-recorded purchase when it helped (shoppers
    expect their newest action to count); claims nothing the contributions do not show."""
    positive = [e for e in evidence if e.contribution > MIN_CONTRIBUTION]
    if not positive:
        return "No single signal stood out: it ranked well on the whole of your profile."
    top = positive[:2]
    recent = next((e for e in positive if e.kind is d.EvidenceKind.RECENT_EVENT), None)
    if recent is not None and recent not in top:
        top = [top[0], recent]
    return "Because " + " and ".join(_phrase(e) for e in top) + "."


def confidence(score: float, page_scores: np.ndarray) -> float:
    """Margin of the result's fused score over the page's mean, squashed to (0, 1) by the logistic function."""
    margin = score - float(np.mean(page_scores))
    return 1.0 / (1.0 + math.exp(-margin))
