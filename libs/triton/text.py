"""Query/title encoding through Triton's `text_encoder` (tokenisation happens here, in the caller)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from libs.model_io import TE_EMBEDDING, TEXT_ENCODER
from libs.text import load_tokenizer, tokenize
from libs.triton.client import TritonClient

if TYPE_CHECKING:
    from libs.scoring import EncodeQuery


async def encode_texts(client: TritonClient, texts: Sequence[str], timeout_s: float | None = None) -> np.ndarray:
    """[len(texts), 384] L2-normalised embeddings, one Triton call."""
    out = await client.infer(TEXT_ENCODER, tokenize(list(texts)), [TE_EMBEDDING], timeout_s)
    return out[TE_EMBEDDING]


def encoder(client: TritonClient) -> EncodeQuery:
    """An `EncodeQuery` (texts, timeout) -> embeddings bound to `client`. Loads the tokenizer now, at start-up,
    rather than on the first request (importing transformers takes seconds)."""
    load_tokenizer()

    async def encode(texts: Sequence[str], timeout_s: float | None = None) -> np.ndarray:
        return await encode_texts(client, texts, timeout_s)

    return encode
