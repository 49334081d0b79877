"""python -m training.evaluate: the offline evaluation table (see training/README.md).

python -m training.evaluate [--models popularity,itemknn] [--no-search] [--no-shelves] [--no-explainers]
    [--reports DIR] [--verbose] [--search-relevance-only]
(the explainer comparison alone: python -m training.evaluate.explainers)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from libs.catalog import DataError, DatasetNotFoundError, default_artifacts_root, default_data_dir, load_dataset
from libs.catalog.prepare import prepare
from training.evaluate.report import format_text, write_reports
from training.evaluate.run import EvalConfig, run
from training.evaluate.split import SplitConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated registry names (default: all)")
    parser.add_argument("--no-search", action="store_true", help="skip the personalised-search proxy")
    parser.add_argument("--no-fidelity", action="store_true", help="skip the explanation deletion test")
    parser.add_argument(
        "--no-search-relevance", action="store_true", help="skip the search relevance evaluation (reports/search.*)"
    )
    parser.add_argument(
        "--search-relevance-only",
        action="store_true",
        help="run only the search relevance evaluation (reports/search.*, typo tolerance included)",
    )
    parser.add_argument(
        "--no-shelves",
        action="store_true",
        help="skip the per-shelf evaluation (reports/shelves.*, training/evaluate/shelves.py)",
    )
    parser.add_argument(
        "--no-explainers",
        action="store_true",
        help="skip the comparison with SHAP, LIME and Captum (reports/explainers.*, training/evaluate/explainers.py)",
    )
    parser.add_argument("--window-days", type=int, default=SplitConfig.window_days)
    parser.add_argument("--end", default=None, help="exclusive end of the test window (default: end of data)")
    parser.add_argument("--data-dir", type=Path, default=None, help="raw data (SHOP_DATA_DIR)")
    parser.add_argument("--artifacts", type=Path, default=None, help="artifacts root (SHOP_ARTIFACTS_DIR)")
    parser.add_argument("--reports", type=Path, default=REPO_ROOT / "reports")
    parser.add_argument("--verbose", action="store_true", help="log every tuning trial")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    artifacts = args.artifacts or default_artifacts_root()
    try:
        # Prepares the data first when needed (idempotent, a few seconds).
        folder = prepare(args.data_dir or default_data_dir(), artifacts, progress=not args.no_progress)
        ds = load_dataset(artifacts, folder.name)
    except (DataError, DatasetNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = EvalConfig(
        split=SplitConfig(window_days=args.window_days, end=args.end),
        models=tuple(m for m in args.models.split(",") if m) or None,
        search_proxy=not args.no_search,
        fidelity=not args.no_fidelity,
        progress=not args.no_progress,
    )
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if args.verbose else (lambda _: None)
    paths = {}
    if not args.search_relevance_only:
        results = run(ds, config, log)
        paths = write_reports(results, args.reports)
        print(format_text(results))
    if not args.no_search_relevance:
        from training.evaluate.search_relevance import evaluate_search, write_search_reports
        from training.evaluate.split import standard_splits

        search = evaluate_search(standard_splits(ds, config.split)[1], progress=not args.no_progress)
        search_paths = write_search_reports(search, args.reports)
        paths |= {f"search_{k}": v for k, v in search_paths.items()}
        print("\n" + search_paths["md"].read_text())
    if not args.no_shelves and not args.search_relevance_only:
        from training.evaluate import shelves
        from training.evaluate.split import standard_splits

        shelf_results = shelves.evaluate_shelves(ds, *standard_splits(ds, config.split), log)
        paths |= shelves.write_reports(shelf_results, args.reports)
        print("\n" + shelves.markdown(shelf_results))
    if not args.no_explainers:
        from training.evaluate import explainers
        from training.evaluate.split import standard_splits

        compared = explainers.run_comparison(standard_splits(ds, config.split)[1], progress=not args.no_progress)
        paths |= explainers.write_reports(compared, args.reports)
        print("\n" + explainers.markdown(compared))
    print(f"\nwrote {', '.join(str(p) for p in paths.values())} in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
