"""Text helpers for callers of the `text_encoder` model.

Tokenisation happens in the caller, not in Triton: the served `text_encoder` takes word-piece ids and an attention
mask (see libs.model_io) and returns the 384-d L2-normalised sentence embedding. Use `tokenize` to build its
inputs, and `query_terms` / `drop_term` for query-term explanations.
"""

from libs.text.tokenizer import (
    drop_term,
    load_tokenizer,
    model_path,
    query_terms,
    tokenize,
)
