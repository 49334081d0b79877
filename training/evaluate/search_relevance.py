"""Search relevance: does Search return what the shopper typed? (`make eval`, reports/search.{json,md,png})

Queries (all derived from the catalogue's own titles, deterministic, or hand-judged):
- head phrases: the most frequent two-word phrases of titles (adjacent words, stop words and numbers excluded) that
  at least MIN_PHRASE_PRODUCTS products contain both words of;
- product types: the most frequent last words of titles ("bag", "holder", ...);
- plurals of product types ("bags") and one-typo misspellings of product types and of the first N_TYPO_PHRASES head
  phrases (the longest word's two middle letters swapped, "hodler", or its middle letter dropped, "holer"; typos
  shorter than 5 letters, which the rules never correct, and typos that spell a word some title holds are left
  out), judged against the intended words;
- a small hand-judged set (training/evaluate/data/search_judgements.json).

Graded relevance of a product (generated queries): 2 = its title contains every intended word (same analysis as the
BM25 index: stemmed, stop words removed), 1 = some, 0 = none (semantic-only neighbours included). Metrics over the
first 10 results: NDCG@10 (gains 2^grade - 1), precision@10 (share of grade 2), and for head phrases the
all-words share = results with every word / min(10, products with every word) (target >= 0.9).

Searchers: BM25 alone, dense alone (exact cosine over the MiniLM title embeddings), and the served Search path
(training.evaluate.served: what the gateway runs) anonymous and personalised for a customer who bought a product
with every word before the cut-off. For the served path the explanations of the first results are computed too and
every query-evidence claim is checked against the title: a "matches" for a word the title lacks is counted
(target 0).

Typo tolerance (libs.index.spelling): each misspelled query against its correct spelling by the same searcher, the
share of the first 10 results with every intended word (target: typo / correct >= 0.8); the served path also with
its text encoder reading the typed query instead of the corrected one (the alternative the service does not take).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchmetrics.functional.retrieval import retrieval_normalized_dcg
from tqdm import tqdm

from libs import domain as d
from libs.relevance import analyse, analyse_many, match
from libs.text import query_terms
from training.evaluate.metrics import single_thread
from training.evaluate.search_proxy import BM25Search
from training.evaluate.served import ServedSearch
from training.evaluate.split import Split

K = 10
MIN_PHRASE_PRODUCTS = 3
N_PHRASES = 60
N_TYPES = 20
N_VARIANTS = 10
N_TYPO_PHRASES = 20  # head phrases that also get a typo
TYPO_TARGET = 0.8  # a query with one typo: its all-words share of the first 10 >= 0.8 x the correct spelling's
# Served Search with one RetrievalCore setting off: the text encoder reading the typed query instead of the
# corrected one (the alternative not taken), and no typo correction at all (the served path before it).
ALTERNATIVES = {
    "served_anonymous, text encoder on the typed query": "dense_corrected",
    "served_anonymous, no typo correction": "correct_typos",
}
EXPLAINED_QUERIES = 40  # queries whose served results are explained and checked for false "matches"
JUDGEMENTS = Path(__file__).with_name("data") / "search_judgements.json"
STOP = {
    "set",
    "of",
    "and",
    "the",
    "with",
    "in",
    "for",
    "a",
    "to",
    "on",
    "design",
    "small",
    "large",
    "mini",
    "medium",
    "pack",
    "box",
}  # sizes and packaging words make poor shopper queries on their own
CASES = ("tea set", "teacup", "lunch bag")  # the examples, shown before/after in the report


@dataclass(frozen=True)
class SearchQuery:
    text: str  # what the shopper types
    kind: str  # phrase | type | plural | misspelling | judged
    grades: np.ndarray  # [n_items] int 0..2
    intended: str = ""  # the words relevance is judged on (misspellings and plurals: the product type)


@dataclass
class SearchResults:
    queries: dict[str, int] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)  # one per (searcher, query kind)
    explanations: dict = field(default_factory=dict)
    typos: list[dict] = field(default_factory=list)  # typo tolerance: misspelled vs correct spelling (typo_table)
    examples: dict = field(default_factory=dict)


def _words(title: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", title.lower()) if len(w) >= 3 and w not in STOP]


def type_noun(title: str) -> str:
    """A title's product type: its last word of 3+ letters that is not a size or packaging word (STOP), e.g.
    "holder" for "WHITE HANGING HEART T-LIGHT HOLDER"; "" when it has none. Also the similar-items proxy's notion of
    "the same kind of product" (training/evaluate/shelves.py)."""
    words = _words(title)
    return words[-1] if words else ""


def _grades(intended: str, title_terms: list[list[str]]) -> np.ndarray:
    terms = analyse(intended)
    return np.array(
        [2 if m.all_terms else 1 if m.coverage > 0 else 0 for m in (match(terms, t) for t in title_terms)], np.int64
    )


def _misspell(word: str) -> str:
    """Swap the two letters in the middle: deterministic, keeps length and first/last letters."""
    i = len(word) // 2
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]


def _drop(word: str) -> str:
    """Leave out the letter in the middle ("lanter"-style typos lose a letter; here an inner one)."""
    i = len(word) // 2
    return word[:i] + word[i + 1 :]


def _typo(text: str, typo, vocabulary: set[str]) -> str:
    """`text` with one typo in its longest word, or "" when the misspelt word is shorter than 5 letters (the typo
    rules correct none: "hert" stays "hert") or spells a word the titles hold (a real word is searched as typed:
    exact matches are preferred, so it is no typo to correct)."""
    words = text.split()
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    wrong = typo(words[longest])
    if len(wrong) < 5 or set(analyse(wrong)) <= vocabulary:
        return ""
    return " ".join(words[:longest] + [wrong] + words[longest + 1 :])


def build_queries(titles: list[str], product_ids: list[str]) -> list[SearchQuery]:
    title_terms = analyse_many(titles)
    pairs = Counter(p for t in titles for p in set(zip(_words(t), _words(t)[1:])))
    out: list[SearchQuery] = []
    for (a, b), _ in pairs.most_common():
        text = f"{a} {b}"
        grades = _grades(text, title_terms)
        if (grades == 2).sum() >= MIN_PHRASE_PRODUCTS and len(set(analyse(text))) == 2:
            out.append(SearchQuery(text, "phrase", grades, text))
        if sum(q.kind == "phrase" for q in out) == N_PHRASES:
            break
    last = Counter(noun for noun in map(type_noun, titles) if noun)
    types = [w for w, n in last.most_common() if n >= MIN_PHRASE_PRODUCTS and analyse(w)][:N_TYPES]
    for w in types:
        out.append(SearchQuery(w, "type", _grades(w, title_terms), w))
    vocabulary = {t for terms in title_terms for t in terms}
    for w in types[:N_VARIANTS]:
        plural = w + ("es" if w.endswith(("s", "x", "ch", "sh")) else "s")
        out.append(SearchQuery(plural, "plural", _grades(w, title_terms), w))
    # One typo per query (a swap and a dropped letter) in product types and head phrases, judged on the intended
    # words; the typo-tolerance figure compares each with its correct spelling.
    correct = [q for q in out if q.kind in ("type", "phrase")]
    for q in [q for q in correct if q.kind == "type"] + [q for q in correct if q.kind == "phrase"][:N_TYPO_PHRASES]:
        for typo in (_misspell, _drop):
            if wrong := _typo(q.text, typo, vocabulary):
                out.append(SearchQuery(wrong, "misspelling", q.grades, q.text))
    index = pd.Index(product_ids)
    for text, judged in json.loads(JUDGEMENTS.read_text())["queries"].items():
        grades = np.zeros(len(titles), np.int64)
        for grade, ids in judged.items():
            grades[index.get_indexer(ids)] = int(grade)
        out.append(SearchQuery(text, "judged", grades, text))
    return out


def graded_ndcg(ranked: np.ndarray, grades: np.ndarray, k: int = K) -> float:
    """NDCG@k with gains 2^grade - 1; relevant products not returned rank below k never-relevant placeholders."""
    ranked = np.asarray(ranked, np.int64)
    relevant = np.flatnonzero(grades > 0)
    if not len(relevant):
        return float("nan")
    missing = np.setdiff1d(relevant, ranked)
    n = len(ranked)
    preds = np.concatenate([np.arange(n + k, k, -1), np.arange(k, 0, -1), np.zeros(len(missing))]).astype(np.float32)
    gains = np.concatenate([2.0 ** grades[ranked] - 1, np.zeros(k), 2.0 ** grades[missing] - 1]).astype(np.float32)
    with single_thread():
        return float(retrieval_normalized_dcg(torch.from_numpy(preds), torch.from_numpy(gains), top_k=k))


def list_metrics(ranked: np.ndarray, q: SearchQuery) -> dict[str, float]:
    top = np.asarray(ranked, np.int64)[:K]
    full = int((q.grades == 2).sum())
    hits = int((q.grades[top] == 2).sum()) if len(top) else 0
    return {
        "ndcg@10": graded_ndcg(top, q.grades),
        "precision@10": hits / K,
        "all_words_share": hits / min(K, full) if full else float("nan"),
    }


class DenseSearch:
    """Exact cosine between the query's and the titles' MiniLM embeddings (the served text encoder, in process)."""

    def __init__(self, served: ServedSearch) -> None:
        self.served = served

    def search(self, query: str, user_id: str | None, k: int) -> np.ndarray:
        q = asyncio.run(self.served.retrieval.encode([query]))[0]
        return np.argsort(-(self.served.store.item_emb @ q), kind="stable")[:k]


def _buyer(q: SearchQuery, split: Split) -> str | None:
    """The customer with most purchases of products with every word, before the cut-off (ties: smallest id)."""
    p = split.train.purchases
    rows = p[np.isin(p["item_idx"].to_numpy(), np.flatnonzero(q.grades == 2))]
    if rows.empty:
        return None
    counts = rows.groupby("user_id").size()
    return str(counts[counts == counts.max()].index.astype(str).min())


def false_match_claims(explanations: list[d.Explanation], titles: list[str], matcher) -> tuple[int, int]:
    """(query-evidence claims checked, claims of a "match" for words the title does not contain)."""
    checked = wrong = 0
    for ex, title_idx in explanations:
        for e in ex.evidence:
            if e.kind in (d.EvidenceKind.QUERY_TERM, d.EvidenceKind.QUERY_MATCH):
                checked += 1
                wrong += any(not matcher.contains(title_idx, w) for w in query_terms(e.text))
    return checked, wrong


def evaluate_search(split: Split, progress: bool = True) -> SearchResults:
    titles = split.train.items["title"].tolist()
    product_ids = split.train.items["product_id"].astype(str).tolist()
    queries = build_queries(titles, product_ids)
    served = ServedSearch()
    served.fit(split.train)
    bm25 = BM25Search()
    bm25.fit(split.train)
    searchers = {"bm25": bm25, "dense": DenseSearch(served), "served_anonymous": served}
    results = SearchResults(queries=dict(Counter(q.kind for q in queries)))
    per: list[dict] = []
    typos: list[dict] = []
    for q in tqdm(queries, desc="search relevance", unit="query", disable=not progress):
        for name, searcher in searchers.items():
            per.append({"searcher": name, "kind": q.kind, **list_metrics(searcher.search(q.text, None, K), q)})
            if q.kind == "misspelling":
                typos.append(_typo_row(name, q, searcher.search(q.text, None, K), searcher.search(q.intended, None, K)))
        if q.kind == "misspelling":  # the served path's alternatives, on the same query
            for name, setting in ALTERNATIVES.items():
                setattr(served.retrieval, setting, False)
                try:
                    typed, correct = served.search(q.text, None, K), served.search(q.intended, None, K)
                    typos.append(_typo_row(name, q, typed, correct))
                finally:
                    setattr(served.retrieval, setting, True)
        buyer = _buyer(q, split)
        if buyer is not None:
            per.append(
                {"searcher": "served_personalised", "kind": q.kind, **list_metrics(served.search(q.text, buyer, K), q)}
            )
    frame = pd.DataFrame(per)
    for (name, kind), g in frame.groupby(["searcher", frame["kind"].where(frame["kind"] == "phrase", "other")]):
        results.rows.append(
            {
                "searcher": name,
                "queries": kind,
                "n": len(g),
                **{m: float(g[m].mean()) for m in ("ndcg@10", "precision@10", "all_words_share")},
            }
        )
    for name, g in frame.groupby("searcher"):
        results.rows.append(
            {
                "searcher": name,
                "queries": "all",
                "n": len(g),
                **{m: float(g[m].mean()) for m in ("ndcg@10", "precision@10", "all_words_share")},
            }
        )
    results.typos = typo_table(pd.DataFrame(typos))
    results.explanations = _check_explanations(
        served, queries[:EXPLAINED_QUERIES] + [q for q in queries if q.kind == "judged"], split, progress
    )
    results.examples = {text: _example(served, text, split, product_ids, titles) for text in CASES}
    return results


def _typo_row(searcher: str, q: SearchQuery, typed: np.ndarray, correct: np.ndarray) -> dict:
    """One misspelled query: the share of its first 10 results with every intended word, and the same share for
    its correct spelling, by the same searcher."""

    def hits(ranked: np.ndarray) -> int:
        return int((q.grades[np.asarray(ranked, np.int64)[:K]] == 2).sum()) if len(ranked) else 0

    same = len(set(np.asarray(typed)[:K].tolist()) & set(np.asarray(correct)[:K].tolist()))
    return {
        "searcher": searcher,
        "query": q.text,
        "intended": q.intended,
        "typo": hits(typed),
        "correct": hits(correct),
        "same": same / min(K, len(correct)) if len(correct) else float("nan"),
    }


def typo_table(frame: pd.DataFrame) -> list[dict]:
    """Per searcher: mean share (of the first 10 with every intended word) for the typos and for their correct
    spellings, their ratio (target >= TYPO_TARGET), and the mean share of the correct spelling's first 10 results
    that the typo's first 10 hold (`same_results`: 1 = the typo finds exactly what the correct spelling finds)."""
    rows = []
    for name, g in frame.groupby("searcher", sort=False):
        typo, correct = g["typo"].sum() / (K * len(g)), g["correct"].sum() / (K * len(g))
        rows.append(
            {
                "searcher": name,
                "n": len(g),
                "typo_share": float(typo),
                "correct_share": float(correct),
                "ratio": float(typo / correct) if correct else float("nan"),
                "queries_at_target": int((g["typo"] >= TYPO_TARGET * g["correct"]).sum()),
                "same_results": float(g["same"].mean()),
            }
        )
    return rows


def _check_explanations(served: ServedSearch, queries: list[SearchQuery], split: Split, progress: bool) -> dict:
    from libs.relevance import TitleMatcher
    from libs.explain.core import ExplanationCore

    titles = split.train.items["title"].tolist()
    core = ExplanationCore(served.store, titles, served.ranking.fusion, served.ranking.infer, served.ranking.encode)
    matcher = TitleMatcher(titles)
    explained = []
    for q in tqdm(queries, desc="search explanations", unit="query", disable=not progress):
        for user in ("", _buyer(q, split) or ""):
            top = served.search(q.text, user, K)
            if not len(top):
                continue
            ids = [str(served.store.item_index[i]) for i in top]
            searched = served.retrieval.indexes.speller.correct(q.text) or q.text  # as the gateway explains it
            out = asyncio.run(core.explain(user, searched, ids, "fused", [], 60.0))
            explained += list(zip(out.explanations, top.tolist()))
    checked, wrong = false_match_claims(explained, titles, matcher)
    return {
        "explanations": len(explained),
        "query_claims_checked": checked,
        "false_match_claims": wrong,
        "target_false_match_claims": 0,
    }


def _example(served: ServedSearch, text: str, split: Split, product_ids: list[str], titles: list[str]) -> dict:
    buyer = _buyer(SearchQuery(text, "example", _grades(text, analyse_many(titles)), text), split)
    out = {"anonymous": [titles[i] for i in served.search(text, None, 6)]}
    if buyer is not None:
        out[f"customer {buyer}"] = [titles[i] for i in served.search(text, buyer, 6)]
    return out


def write_search_reports(results: SearchResults, reports: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports.mkdir(parents=True, exist_ok=True)
    blob = {
        "k": K,
        "queries": results.queries,
        "table": results.rows,
        "explanations": results.explanations,
        "examples": results.examples,
        "typos": results.typos,
        "targets": {
            "all_words_share (served, head phrases)": 0.9,
            "false_match_claims": 0,
            "typo share / correct share (served)": TYPO_TARGET,
        },
    }
    paths = {"json": reports / "search.json", "md": reports / "search.md", "png": reports / "search.png"}
    paths["json"].write_text(json.dumps(blob, indent=2) + "\n")
    lines = [
        "# Search relevance (`make eval`)",
        "",
        f"Queries: {results.queries}",
        "",
        "| searcher | queries | n | NDCG@10 | precision@10 | all-words share |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results.rows:
        lines.append(
            f"| {r['searcher']} | {r['queries']} | {r['n']} | {r['ndcg@10']:.4f} | "
            f"{r['precision@10']:.4f} | {r['all_words_share']:.4f} |"
        )
    lines += [
        "",
        "## Typo tolerance",
        "",
        "Each query with one typo (`misspelling`) against its correct spelling, same searcher: the share of the first "
        f"10 results whose title holds every intended word; target typo share / correct share >= {TYPO_TARGET} "
        "(served). `queries at target`: queries whose own ratio reaches it; `same results`: share of the correct "
        "spelling's first 10 that the typo's first 10 hold. Command: "
        "`python -m training.evaluate --search-relevance-only`.",
        "",
        "| searcher | n | typo share | correct share | typo / correct | queries at target | same results |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.typos:
        lines.append(
            f"| {r['searcher']} | {r['n']} | {r['typo_share']:.4f} | {r['correct_share']:.4f} | "
            f"**{r['ratio']:.3f}** | {r['queries_at_target']} | {r['same_results']:.3f} |"
        )
    e = results.explanations
    lines += [
        "",
        f"Explanations checked: {e['explanations']}; query claims {e['query_claims_checked']}; "
        f"claims of a match the title lacks: {e['false_match_claims']} (target 0).",
        "",
        "## Examples",
        "",
    ]
    for text, shown in results.examples.items():
        for who, items in shown.items():
            lines.append(f'- "{text}", {who}: ' + "; ".join(items))
    paths["md"].write_text("\n".join(lines) + "\n")
    frame = pd.DataFrame([r for r in results.rows if r["queries"] != "all"])
    fig, ax = plt.subplots(figsize=(8, 4))
    pivot = frame.pivot(index="searcher", columns="queries", values="ndcg@10")
    pivot.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("NDCG@10 (graded)")
    ax.set_title("Search relevance: head phrases vs other queries")
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=110)
    plt.close(fig)
    return paths
