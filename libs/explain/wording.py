"""What an explanation says: a sentence naming the (at most two) strongest measured reasons with the facts their
evidence read, and a confidence read from the fused score.

Evidence pieces that make the same claim are one reason, so a sentence never says a thing twice: the repeat-purchase
signal and the purchase-frequency prior of a product the user bought ("you ordered it 4 times"), shop-wide
popularity and the frequency prior of a product the user never bought ("ordered 57 times in the last 28 days"),
and every query piece (the words the title has, or those it is only close to). Each past product is a reason of its
own. A reason's strength is the sum of its pieces' measured contributions; only reasons that helped are named.
Every number, date, product title and quoted word in a sentence is a fact of that item's evidence. On a context
shelf the sentence opens with what placed the result there (bought together with the context product in N orders,
or the title words it shares with it), then the strongest reason that helped its score.

The second reason says something about this product when a comparable one helped: another past purchase that is
not the product's co-purchase neighbour is read by the rankers for every candidate, so it tends to lift the whole
page alike ("you ordered HAND WARMER twice" under every chair of a search), while the product's own facts (your
orders of it, its orders by customers like you or by the shop, a past purchase it is bought with) tell it apart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from libs import domain as d
from libs.relevance import analyse

MIN_CONTRIBUTION = 1e-4
MAX_REASONS = 2
MAX_CLOSE_WORDS = 2
# A reason about the product takes the second place from a stronger reason about another past purchase when its
# strength is at least this share of that one's (below, the product fact is too weak to be the reason).
ABOUT_PRODUCT_SHARE = 0.25
K = d.EvidenceKind
QUERY_KINDS = (K.QUERY_MATCH, K.QUERY_TERM, K.QUERY_SIMILAR)
PRODUCT_KINDS = (K.PAST_PURCHASE, K.RECENT_EVENT, K.CO_PURCHASE_NEIGHBOUR)
COUNT_CLAIMS = ("shop", K.SIMILAR_CUSTOMERS.value)  # claims that are a count, nothing without it
# What placed a result on a context shelf: named first, with the strongest reason that helped its score.
PLACEMENT_KINDS = (K.BOUGHT_TOGETHER, K.SHARES_WITH)
MAX_SHARED_WORDS = 3


@dataclass(frozen=True)
class Reason:
    claim: str  # what is claimed: one sentence names each claim once
    strength: float  # sum of the measured contributions of the pieces that make the claim
    evidence: tuple[d.Evidence, ...]


def claim_of(ev: d.Evidence, product_id: str = "") -> str:
    """`product_id`: the item explained; its own past orders read through the history say what repeat does."""
    if ev.kind in PRODUCT_KINDS:
        return "own" if ev.product_id == product_id else f"product:{ev.product_id}"
    if ev.kind in QUERY_KINDS:
        return "query"
    if ev.kind is K.PURCHASE_FREQUENCY:  # the prior read the user's own orders, or else the shop's
        return "own" if ev.last_time else "shop"
    return {K.REPEAT_PURCHASE: "own", K.POPULARITY: "shop"}.get(ev.kind, ev.kind.value)


def reasons(evidence: Sequence[d.Evidence], product_id: str = "") -> list[Reason]:
    """The claims the evidence makes that helped, strongest first. A count claim whose count is 0 is not made: the
    contribution then came from a feature with no fact to name (an unsold product's smoothed repeat rate, say)."""
    groups: dict[str, list[d.Evidence]] = {}
    for ev in evidence:
        if ev.kind is not None:
            groups.setdefault(claim_of(ev, product_id), []).append(ev)
    out = [
        Reason(claim, sum(e.contribution for e in evs), tuple(evs))
        for claim, evs in groups.items()
        if claim not in COUNT_CLAIMS or any(e.count for e in evs)
    ]
    return sorted((r for r in out if r.strength > MIN_CONTRIBUTION), key=lambda r: -r.strength)


def sentence(evidence: Sequence[d.Evidence], product_id: str = "") -> str:
    """The strongest two reasons, keeping a just-recorded purchase that helped (shoppers expect their newest action
    to count); claims nothing the contributions do not show. `product_id`: the item explained."""
    found = reasons(evidence, product_id)
    placed = next((e for e in evidence if e.kind in PLACEMENT_KINDS), None)
    if placed is not None:
        return "Because " + ", and ".join([_placement(placed), *(phrase(r) for r in found[:1])]) + "."
    if not found:
        return "No single signal stood out: it ranked well on the whole of your profile."
    top = found[:1] + [_second(found[1:])] if len(found) > 1 else found[:1]
    recent = next((r for r in found if any(e.kind is K.RECENT_EVENT for e in r.evidence)), None)
    if recent is not None and recent not in top:
        top = [top[0], recent]
    # The comma keeps the reasons apart from the "and" and commas inside them (lists of words, dates).
    return "Because " + ", and ".join(phrase(r) for r in top) + "."


def about_product(reason: Reason) -> bool:
    """Whether the reason states a fact about the product itself, not only about the customer's other purchases."""
    if not reason.claim.startswith("product:"):
        return True
    return any(e.kind in (K.CO_PURCHASE_NEIGHBOUR, K.RECENT_EVENT) for e in reason.evidence)


def _second(rest: Sequence[Reason]) -> Reason:
    """The strongest of `rest` (strongest first), unless it is about another past product and a reason about this
    product is at least ABOUT_PRODUCT_SHARE as strong."""
    if about_product(rest[0]):
        return rest[0]
    own = next((r for r in rest if about_product(r)), None)
    return own if own is not None and own.strength >= ABOUT_PRODUCT_SHARE * rest[0].strength else rest[0]


def phrase(reason: Reason) -> str:
    """The reason in words, with the facts of its strongest piece that read them."""
    evs = sorted(reason.evidence, key=lambda e: -e.contribution)
    first = evs[0]
    if reason.claim == "query":
        return _query(evs)
    if reason.claim == "own":
        fact = next((e for e in evs if e.count), first)
        return "you ordered it " + _times_and_when(fact, fact.interval_days)
    if reason.claim == "shop":
        fact = next(e for e in evs if e.count)
        if not fact.window_days:
            return f"it has been ordered {_times(fact.count)} in all"
        return f"it was ordered {_times(fact.count)} in the last {fact.window_days} days"
    if first.kind is K.RECENT_EVENT:
        return f"you just bought {first.title}"
    if first.kind is K.CO_PURCHASE_NEIGHBOUR:
        return f"shoppers often buy it with {first.title}, which you ordered " + _times_and_when(first)
    if first.kind is K.PAST_PURCHASE:
        return f"you ordered {first.title} " + _times_and_when(first)
    if first.kind is K.SIMILAR_CUSTOMERS:
        who = "customer who buys" if first.count == 1 else "customers who buy"
        if not first.window_days:
            return f"{first.count} {who} what you buy ordered it"
        return f"{first.count} {who} what you buy ordered it in the last {first.window_days} days"
    if first.kind is K.DISCOVERY:
        return "it is new to you, which this list favours"
    return first.text


def showing_results_for(corrected_query: str, sentence: str) -> str:
    """A Search result's sentence when a typo in the query was corrected: what was searched comes first."""
    return f'Showing results for "{corrected_query}". {sentence}'


def _placement(ev: d.Evidence) -> str:
    if ev.kind is K.BOUGHT_TOGETHER:
        return f"it was bought together with {ev.title} in {ev.count} order" + ("" if ev.count == 1 else "s")
    words = ev.text.split()[:MAX_SHARED_WORDS]
    return f"it shares {_words(words)} with {ev.title}" if words else f"its title is close in meaning to {ev.title}"


def _query(evs: Sequence[d.Evidence]) -> str:
    """Each typed word once: those the title has (relevance and the rankers' query path alike) and the one it lacks
    whose meaning helped most, else the (at most MAX_CLOSE_WORDS) words whose meaning helped most."""
    has: list[str] = []
    for e in evs:
        for w in e.text.split() if e.kind is K.QUERY_MATCH else [e.text] if e.kind is K.QUERY_TERM else []:
            if w not in has:
                has.append(w)
    # A stop word ("and", "with") carries no meaning of its own to be close to, whatever the masking measured.
    close = [
        e.text
        for e in evs
        if e.kind is K.QUERY_SIMILAR and e.contribution > MIN_CONTRIBUTION and analyse(e.text) and e.text not in has
    ]
    if has:
        # How the title matched: the words it has, and the word it lacks whose meaning helped this result most
        # (which one differs between results that have the same words).
        near = f" and is close in meaning to {_words(close[:1])}" if close else ""
        return f"its title has {_words(has)} from your search{near}"
    if not close:
        return "it is close in meaning to your search"
    return f"it is close in meaning to {_words(list(dict.fromkeys(close))[:MAX_CLOSE_WORDS])} from your search"


def _words(words: Sequence[str]) -> str:
    quoted = [f'"{w}"' for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _times_and_when(ev: d.Evidence, interval_days: int = 0) -> str:
    """How often and when last; with `interval_days` (the user's own repurchase interval), how regularly too."""
    if not ev.count:
        return "before"
    when = date(ev.last_time)
    if ev.count == 1:
        return f"once, on {when}" if when else "once"
    times = _times(ev.count) + (f", {every(interval_days)}" if interval_days else "")
    return f"{times}, last on {when}" if when else times


def every(days: int) -> str:
    """A repurchase interval in words: days below two weeks, else whole weeks."""
    if days < 14:
        return "about every day" if days <= 1 else f"about every {days} days"
    return f"about every {round(days / 7)} weeks"


def date(seconds: float) -> str:
    """A day in words, e.g. "2 Nov 2011" (UTC); "" for none."""
    if not seconds:
        return ""
    t = time.gmtime(seconds)
    return f"{t.tm_mday} {time.strftime('%b %Y', t)}"


def confidence(score: float, page_scores: np.ndarray) -> float:
    """Margin of the result's fused score over the page's mean, squashed to (0, 1) by the logistic function."""
    margin = score - float(np.mean(page_scores))
    return 1.0 / (1.0 + math.exp(-margin))
