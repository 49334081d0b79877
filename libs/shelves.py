"""Shelves: the placements a shop fills with Recommend, each from its own candidates, then ranked, explained and
attributed like the mixed list (issue 24).

- FOR_YOU: the rankers' whole candidate pool (libs.features.candidate_parts), repeat and new products mixed.
- BUY_AGAIN: the pool restricted to the customer's own past products.
- DISCOVER: the pool minus every product the customer bought.
- FREQUENTLY_BOUGHT_TOGETHER: the FBT_CANDIDATES products bought in the most invoices together with the context
  products (the co-purchase counts the features use, summed); the context products themselves never.
- SIMILAR_ITEMS: the SIMILAR_CANDIDATES nearest titles to the one context product by embedding (retrieval's ANN),
  never itself.

Pure logic: validation of a request's shelf fields and the candidate lists over item indices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from libs import domain as d
from libs import validation
from libs.errors import FieldViolation, InvalidArgumentError
from libs.features import POOL_HISTORY

MAX_CONTEXT_PRODUCTS = 50
# Candidates the rankers order on the context shelves. Further down either list a product stops being a complement
# (a substitute): a heart T-light holder's 30 nearest titles are T-light holders, its 200th are not. The
# frequently-bought-together count is chosen on validation NDCG@10 (`make eval`, training/evaluate/shelves.py).
FBT_CANDIDATES = 100
SIMILAR_CANDIDATES = 30
# Shelves about the customer need one; the context shelves personalise with one when given.
PERSONAL = frozenset({d.Shelf.FOR_YOU, d.Shelf.BUY_AGAIN, d.Shelf.DISCOVER})
CONTEXT_BOUNDS = {d.Shelf.FREQUENTLY_BOUGHT_TOGETHER: (1, MAX_CONTEXT_PRODUCTS), d.Shelf.SIMILAR_ITEMS: (1, 1)}


def shelf_name(shelf: d.Shelf) -> str:
    """The enum's wire name, e.g. SHELF_BUY_AGAIN (what error messages and reports show)."""
    return f"SHELF_{shelf.value}"


def check_request(shelf: d.Shelf, user_id: str, context_product_ids: Sequence[str]) -> list[str]:
    """The context product ids, de-duplicated in request order; INVALID_ARGUMENT naming every bad field.

    `user_id` is already validated (digits) or empty."""
    violations: list[FieldViolation] = []
    if shelf in PERSONAL and not user_id:
        violations.append(FieldViolation("user_id", f"is required on {shelf_name(shelf)}"))
    bounds = CONTEXT_BOUNDS.get(shelf)
    n = len(context_product_ids)
    if bounds is None and n:
        violations.append(FieldViolation("context_product_ids", f"must be empty on {shelf_name(shelf)}"))
    elif bounds is not None and not bounds[0] <= n <= bounds[1]:
        want = f"exactly {bounds[0]}" if bounds[0] == bounds[1] else f"{bounds[0]}..{bounds[1]}"
        violations.append(
            FieldViolation("context_product_ids", f"must hold {want} product ids on {shelf_name(shelf)} (got {n})")
        )
    elif bounds is not None:
        for i, product_id in enumerate(context_product_ids):
            if why := validation.product_id_problem(product_id):
                violations.append(FieldViolation(f"context_product_ids[{i}]", why))
    if violations:
        raise InvalidArgumentError(violations)
    return list(dict.fromkeys(context_product_ids))


def context_items(index: Mapping[str, int], product_ids: Sequence[str]) -> list[int]:
    """Item indices of the context products the models know, in order; unknown ones contribute nothing."""
    return [index[p] for p in dict.fromkeys(product_ids) if p in index]


def buy_again_parts(parts: Sequence[tuple[str, np.ndarray]], bought: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The pool's parts (candidate_parts) reduced to products in `bought`: its history part, and older purchases
    that another part proposes (the history part holds only the newest POOL_MAX_HISTORY)."""
    return [(name, items[np.isin(items, bought)]) for name, items in parts]


def discover_parts(parts: Sequence[tuple[str, np.ndarray]], bought: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The pool's parts (candidate_parts) without the history part and without any product in `bought`."""
    return [(name, items[~np.isin(items, bought)]) for name, items in parts if name != POOL_HISTORY]


def frequently_bought_together(
    copurchase: sp.csr_matrix, context: Sequence[int], limit: int
) -> list[tuple[int, float]]:
    """(item, invoices shared with the context products, summed over them), most first, ties by item index; the
    context products excluded; only items bought together at least once."""
    if not context:
        return []
    counts = np.asarray(copurchase[list(context)].sum(axis=0), np.float64).ravel()
    counts[list(context)] = 0.0
    nonzero = np.flatnonzero(counts)
    order = nonzero[np.argsort(-counts[nonzero], kind="stable")][:limit]
    return [(int(i), float(counts[i])) for i in order]
