"""What typo tolerance costs Search: p50 with and without it, in one run. A benchmark, not a timed test.

    python -m loadtest.typo_bench [--rounds 3]

The gateway's Search path in process (loadtest.floor.InProcessShop: GatewayCore over the retrieval, ranking and
explanation cores, the served model.onnx files in ONNX Runtime, no gRPC hops), anonymous, page of 20, unexplained,
on the search evaluation's queries (training.evaluate.search_relevance): the correct spellings (product types and
head phrases) and their one-typo variants. Each query runs with the correction on and off (RetrievalCore's
`correct_typos`), alternating, so drift hits both alike; the correction alone (Speller.correct) is timed too. The
text encoder's answers are cached as in Triton's response cache (a warm-up round fills it), so the arms differ only
by what the correction does and by what the corrected query then finds. Writes reports/typo.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import string
import sys
import time
from pathlib import Path

from libs.config import REPORTS_DIR
from libs.gateway import Budget
from libs.validation import MAX_QUERY_CHARS
from loadtest.floor import InProcessShop

PAGE = 20


def _p50_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000 if seconds else float("nan")


async def run(shop: InProcessShop, retrieval, queries: dict[str, list[str]], rounds: int) -> dict:
    lat: dict[tuple[str, bool], list[float]] = {(kind, on): [] for kind in queries for on in (True, False)}
    corrected = dict.fromkeys(queries, 0)
    for r in range(rounds + 1):  # round 0 warms up (encoder cache, ONNX sessions) and is not recorded
        for kind, texts in queries.items():
            for text in texts:
                for on in (True, False) if r % 2 else (False, True):
                    retrieval.correct_typos = on
                    t = time.perf_counter()
                    page = await shop.core.search(text, "", PAGE, False, Budget(time.monotonic() + 10.0))
                    if r:
                        lat[(kind, on)].append(time.perf_counter() - t)
                    if r == 1 and on:
                        corrected[kind] += bool(page.corrected_query)
    retrieval.correct_typos = True
    speller = retrieval.indexes.speller
    alone = {}
    for kind, texts in queries.items():
        times = []
        for _ in range(rounds):
            for text in texts:
                t = time.perf_counter()
                speller.correct(text)
                times.append(time.perf_counter() - t)
        alone[kind] = statistics.median(times) * 1e6
    # The longest query the API takes, every word unknown and long enough for two edits: the correction's worst case.
    rng = random.Random(0)
    worst = " ".join("".join(rng.choices(string.ascii_lowercase, k=10)) for _ in range(47))[:MAX_QUERY_CHARS]
    times = []
    for _ in range(rounds * 10):
        t = time.perf_counter()
        speller.correct(worst)
        times.append(time.perf_counter() - t)
    rows = []
    for kind, texts in queries.items():
        on, off = _p50_ms(lat[(kind, True)]), _p50_ms(lat[(kind, False)])
        rows.append(
            {
                "queries": kind,
                "n": len(texts),
                "searches_per_arm": len(lat[(kind, True)]),
                "corrected": corrected[kind],
                "p50_ms_with": on,
                "p50_ms_without": off,
                "ratio": on / off,
                "correction_alone_p50_us": alone[kind],
            }
        )
    return {
        "rows": rows,
        "vocabulary_words": len(speller),
        "worst_case": {"query_chars": len(worst), "words": len(worst.split()), "p50_ms": _p50_ms(times)},
    }


def markdown(out: dict, command: str) -> str:
    lines = [
        "# Typo tolerance: Search p50 with and without it",
        "",
        f"`{command}`; the gateway's Search path in process (loadtest.floor), anonymous, page of {PAGE}, "
        f"unexplained; vocabulary {out['vocabulary_words']} title words; {out['machine']}.",
        "",
        "| queries | n | searches per arm | corrected | p50 ms with | p50 ms without | with / without | "
        "correction alone, p50 µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in out["rows"]:
        lines.append(
            f"| {r['queries']} | {r['n']} | {r['searches_per_arm']} | {r['corrected']} | {r['p50_ms_with']:.2f} | "
            f"{r['p50_ms_without']:.2f} | **{r['ratio']:.3f}** | {r['correction_alone_p50_us']:.1f} |"
        )
    w = out["worst_case"]
    lines += [
        "",
        f"Worst case, the correction alone: a {w['query_chars']}-character query of {w['words']} unknown 10-letter "
        f"words (the longest query the API takes): p50 {w['p50_ms']:.2f} ms.",
        "",
        "Without the correction a typo query finds little lexically (the misspelt word matches no title), so it ranks "
        "fewer candidates: its `without` time is not a like-for-like cost; the exact-spelling row is.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import os
    import platform

    from training.evaluate.search_relevance import build_queries

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="recorded passes over the queries per arm")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR)
    args = parser.parse_args(argv)
    shop = InProcessShop()
    try:
        retrieval = shop.core.retrieval.core
        built = build_queries(list(retrieval.indexes.titles), list(retrieval.indexes.product_ids))
        typos = [q for q in built if q.kind == "misspelling"]
        queries = {
            "correct spelling": list(dict.fromkeys(q.intended for q in typos)),
            "one typo": [q.text for q in typos],
        }
        out = asyncio.run(run(shop, retrieval, queries, args.rounds))
    finally:
        shop.close()
    out["machine"] = f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}"
    command = "python -m loadtest.typo_bench" + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "typo.json").write_text(json.dumps(out, indent=1) + "\n")
    text = markdown(out, command)
    (args.out / "typo.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
