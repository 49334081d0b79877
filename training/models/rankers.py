"""transformer_ranker and gnn_ranker: PyTorch modules whose forward takes exactly the libs.model_io inputs.

Both score every candidate independently of the other candidates (no cross-candidate ops), so masked explanation
scenarios and any candidate split give the same per-candidate scores. Export-friendly by construction: only
Gather (embedding lookups), MatMul, Softmax, LayerNorm, ReLU, elementwise ops and reshapes; masks are applied as
additive -1e4 before softmax and multiplicative 0 after it (no boolean indexing, no scatter, safe in FP16).
"""

from __future__ import annotations

import copy
import math
import pkgutil
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from libs.model_io import (
    CAND_EMB,
    CAND_IDS,
    EDGE_FEATURES,
    HIST_FEATURES,
    MAX_HISTORY,
    NEW_CAND_EMB,
    POP_FEATURES,
    REPEAT_FEATURES,
    TEXT_DIM,
)
from libs.rankers import get as ranker

NEG = -1.0e4  # additive mask value; representable in FP16


def new_module(name: str, config: Mapping[str, Any], item_emb: np.ndarray | None = None) -> nn.Module:
    """A fresh PyTorch module of ranker `name`: the class its registry entry names, built from `config` and the
    title embeddings [n_items, 384] (tables a module holds)."""
    return pkgutil.resolve_name(ranker(name).module).from_config(config, item_emb)


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis where mask == 1; rows with no valid entry come out all zero."""
    weights = torch.softmax(logits + (1.0 - mask) * NEG, dim=-1)
    return weights * mask


class ItemEncoder(nn.Module):
    """Item representation = projected title embedding + learned id embedding (id 0 = unknown/pad -> zeros)."""

    def __init__(self, n_items: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.text = nn.Linear(TEXT_DIM, dim)
        self.ids = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.ids.weight, std=0.02)
        with torch.no_grad():
            self.ids.weight[0].zero_()
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.drop(self.norm(self.text(emb) + self.ids(ids)))

    def table(self, text_table: torch.Tensor) -> torch.Tensor:
        """Representations of every item id at once: row i = forward(i, text_table[i]) (row-wise ops commute
        with the lookup, so gathering rows of this table is the cheap way to encode many neighbours)."""
        return self.drop(self.norm(self.text(text_table) + self.ids.weight))


class Block(nn.Module):
    """Pre-LN transformer block over the history with a key mask (bidirectional: the whole history is known)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.n1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.n2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.n1(x)).chunk(3, dim=-1)
        q = q.reshape(b, length, h, d // h).transpose(1, 2)
        k = k.reshape(b, length, h, d // h).transpose(1, 2)
        v = v.reshape(b, length, h, d // h).transpose(1, 2)
        att = masked_softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h), mask[:, None, None, :])
        y = (att @ v).transpose(1, 2).reshape(b, length, d)
        x = x + self.drop(self.out(y))
        x = x + self.drop(self.ff(self.n2(x)))
        return x * mask[..., None]


def score_head(in_dim: int, dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, 2 * dim),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(2 * dim, dim),
        nn.ReLU(),
        nn.Linear(dim, 1),
    )


class SideFeatures(nn.Module):
    """Repeat-purchase and popularity features: a direct linear path plus their embedding for the head."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(REPEAT_FEATURES + POP_FEATURES, 1)
        self.embed = nn.Sequential(nn.Linear(REPEAT_FEATURES + POP_FEATURES, dim), nn.ReLU())

    def forward(self, repeat: torch.Tensor, pop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = torch.cat([repeat, pop], dim=-1)
        return self.linear(f).squeeze(-1), self.embed(f)


class TransformerRanker(nn.Module):
    """SASRec-like encoder over the time-ordered history (title + id + time/basket features + position), target
    attention from each candidate (plus the query, when present) over the encoded history, and a scoring MLP that
    also sees repeat-purchase and popularity features.

    forward(hist_ids, hist_emb, hist_feats, hist_mask, cand_ids, cand_emb, repeat_feats, pop_feats, query_emb,
    query_mask) -> (score [B, C], hist_attention [B, C, L])
    """

    @classmethod
    def from_config(cls, config: Mapping[str, Any], item_emb: np.ndarray | None = None) -> TransformerRanker:
        return cls(**config)  # titles reach it as inputs, not as a table it holds

    def __init__(self, n_items: int, dim: int = 64, layers: int = 2, heads: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.config = dict(n_items=n_items, dim=dim, layers=layers, heads=heads, dropout=dropout)
        self.items = ItemEncoder(n_items, dim, dropout)
        self.hist_feats = nn.Linear(HIST_FEATURES, dim)
        self.pos = nn.Parameter(torch.zeros(1, MAX_HISTORY, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.final = nn.LayerNorm(dim)
        self.query = nn.Linear(TEXT_DIM, dim)
        self.tq = nn.Linear(dim, dim)
        self.tk = nn.Linear(dim, dim)
        self.tv = nn.Linear(dim, dim)
        self.side = SideFeatures(dim)
        self.head = score_head(6 * dim + 1, dim, dropout)

    def forward(
        self,
        hist_ids,
        hist_emb,
        hist_feats,
        hist_mask,
        cand_ids,
        cand_emb,
        repeat_feats,
        pop_feats,
        query_emb,
        query_mask,
    ):
        d = self.pos.shape[-1]
        x = self.items(hist_ids, hist_emb) + self.hist_feats(hist_feats) + self.pos
        x = x * hist_mask[..., None]
        for block in self.blocks:
            x = block(x, hist_mask)
        x = self.final(x) * hist_mask[..., None]  # [B, L, D]
        has_hist = (hist_mask.sum(-1, keepdim=True) > 0).to(x.dtype)  # [B, 1]
        user = (x.sum(1) / hist_mask.sum(-1, keepdim=True).clamp(min=1.0)) * has_hist  # [B, D]

        cand = self.items(cand_ids, cand_emb)  # [B, C, D]
        q = self.query(query_emb) * query_mask  # [B, D]
        probe = cand + q[:, None, :]
        logits = self.tq(probe) @ self.tk(x).transpose(1, 2) / math.sqrt(d)  # [B, C, L]
        attention = masked_softmax(logits, hist_mask[:, None, :])
        pooled = attention @ self.tv(x)  # [B, C, D]
        # Raw text match between query and candidate title (both L2-normalised MiniLM embeddings).
        text_match = (cand_emb * query_emb[:, None, :]).sum(-1, keepdim=True) * query_mask[:, None, :]
        lin, side = self.side(repeat_feats, pop_feats)
        h = torch.cat(
            [pooled, cand, pooled * cand, user[:, None, :] * cand, q[:, None, :] * cand, side, text_match], dim=-1
        )
        score = self.head(h).squeeze(-1) + lin
        return score, attention


class GnnRanker(nn.Module):
    """Inductive two-sided GNN over the purchase graph (PinSage / GraphSAGE style, dense sampled neighbourhoods).

    Item side: a candidate aggregates its sampled co-purchase neighbours (item-basket-item paths of the purchase
    graph) with attention that also sees the co-purchase strength, then a GraphSAGE concat-update. Neighbour item
    features come from the title embeddings held in the model (`item_text`, [n_items + 1, 384], row 0 = zeros),
    so only ids travel for them. User side: the user is the set of their sampled item neighbours (edge features:
    how often, how recently), aggregated by attention from each candidate. A brand-new customer (a few fresh
    purchases) and a brand-new product (title embedding, id 0, no neighbours) are scored without retraining.

    forward(user_nbr_ids, user_nbr_emb, user_nbr_feats, user_nbr_mask, cand_ids, cand_emb, cand_nbr_ids,
    cand_nbr_weight, cand_nbr_mask, repeat_feats, pop_feats) -> (score [B, C], user_attention [B, C, Ku],
    cand_nbr_attention [B, C, Kc])
    """

    @classmethod
    def from_config(cls, config: Mapping[str, Any], item_emb: np.ndarray | None = None) -> GnnRanker:
        return cls(item_text=None if item_emb is None else torch.from_numpy(np.asarray(item_emb)), **config)

    def __init__(
        self, n_items: int, item_text: torch.Tensor | None = None, dim: int = 64, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.config = dict(n_items=n_items, dim=dim, dropout=dropout)
        table = torch.zeros(n_items + 1, TEXT_DIM)
        if item_text is not None:
            table[1:] = torch.as_tensor(item_text, dtype=torch.float32)
        self.register_buffer("item_text", table)
        self.items = ItemEncoder(n_items, dim, dropout)
        self.edge = nn.Linear(EDGE_FEATURES, dim)
        self.nq = nn.Linear(dim, dim)
        self.nk = nn.Linear(dim, dim)
        self.nw = nn.Parameter(torch.tensor(0.5))
        self.sage = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.LayerNorm(dim))
        self.uq = nn.Linear(dim, dim)
        self.uk = nn.Linear(dim, dim)
        self.uv = nn.Linear(dim, dim)
        self.uw = nn.Linear(EDGE_FEATURES, 1)
        self.side = SideFeatures(dim)
        self.head = score_head(5 * dim, dim, dropout)

    def forward(
        self,
        user_nbr_ids,
        user_nbr_emb,
        user_nbr_feats,
        user_nbr_mask,
        cand_ids,
        cand_emb,
        cand_nbr_ids,
        cand_nbr_weight,
        cand_nbr_mask,
        repeat_feats,
        pop_feats,
    ):
        d = self.nq.out_features
        b, c, k = cand_nbr_ids.shape
        # Item side: candidate <- its co-purchase neighbours.
        cand = self.items(cand_ids, cand_emb)  # [B, C, D]
        flat = cand_nbr_ids.reshape(b, c * k)
        table, keys = self.neighbour_tables()  # [n_items + 1, D] each
        nbr = table[flat].reshape(b, c, k, d)  # [B, C, Kc, D]
        keys = keys[flat].reshape(b, c, k, d)  # = nk(nbr), computed per item instead of per slot
        n_logits = (self.nq(cand)[:, :, None, :] * keys).sum(-1) / math.sqrt(d) + self.nw * cand_nbr_weight
        n_att = masked_softmax(n_logits, cand_nbr_mask)  # [B, C, Kc]
        agg = (n_att[..., None] * nbr).sum(2)  # [B, C, D]
        z = self.sage(torch.cat([cand, agg], dim=-1))  # [B, C, D]

        # User side: user <- their item neighbours (with edge features), attended from each candidate.
        u = self.items(user_nbr_ids, user_nbr_emb) + self.edge(user_nbr_feats)  # [B, Ku, D]
        u = u * user_nbr_mask[..., None]
        u_logits = self.uq(z) @ self.uk(u).transpose(1, 2) / math.sqrt(d) + self.uw(user_nbr_feats).transpose(1, 2)
        u_att = masked_softmax(u_logits, user_nbr_mask[:, None, :])  # [B, C, Ku]
        pooled = u_att @ self.uv(u)  # [B, C, D]
        user = u.sum(1) / user_nbr_mask.sum(-1, keepdim=True).clamp(min=1.0)  # [B, D]

        lin, side = self.side(repeat_feats, pop_feats)
        h = torch.cat([pooled, z, pooled * z, user[:, None, :] * z, side], dim=-1)
        score = self.head(h).squeeze(-1) + lin
        return score, u_att, n_att

    def neighbour_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item's representation and attention key. Training recomputes them (the weights change); the
        serving form holds them as constants, so a call costs a gather, not a pass over the whole catalogue."""
        if hasattr(self, "frozen_table"):
            return self.frozen_table, self.frozen_keys
        table = self.items.table(self.item_text)
        return table, self.nk(table)

    def freeze(self) -> "GnnRanker":
        """The serving form (eval mode, for export): same scores, catalogue-wide tables computed once."""
        frozen = copy.deepcopy(self).eval()
        with torch.no_grad():
            table, keys = frozen.neighbour_tables()
        frozen.register_buffer("frozen_table", table.clone())
        frozen.register_buffer("frozen_keys", keys.clone())
        return frozen


class SeedEnsemble(nn.Module):
    """Members of one architecture trained with different seeds; outputs are the members' means (scores and
    attention weights alike, so attention rows still sum to 1). Exported and served as one model."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config = {"members": [m.config for m in members]}

    def forward(self, *inputs):
        outs = [m(*inputs) for m in self.members]
        return tuple(torch.stack([o[i] for o in outs]).mean(0) for i in range(len(outs[0])))


class WireForm(nn.Module):
    """The exported form of a ranker: reads ids where the trained module reads title embeddings, and looks the
    rows up in the catalogue's title table it holds (libs/rankers/wire.py: the wire format). Same numbers: every
    embedding input of the trained module is exactly a row of that table, except new candidates', which travel."""

    def __init__(
        self,
        module: nn.Module,
        titles: np.ndarray,
        full_names: list[str],
        wire_names: list[str],
        gathered: tuple[tuple[str, str], ...],
    ) -> None:
        super().__init__()
        self.module = module
        self.register_buffer("titles", torch.as_tensor(np.asarray(titles, np.float32)))
        self.full_names, self.wire_names, self.gathered = list(full_names), list(wire_names), tuple(gathered)

    def forward(self, *args):
        x = dict(zip(self.wire_names, args))
        for emb, ids in self.gathered:
            rows = self.titles[x[ids]]
            x[emb] = rows + x[NEW_CAND_EMB] if (emb, ids) == (CAND_EMB, CAND_IDS) else rows
        return self.module(*(x[n] for n in self.full_names))


def wire_form(module: nn.Module, name: str, item_emb: np.ndarray) -> nn.Module:
    """`module` (already in its serving form) behind the wire format of ranker `name`."""
    from libs.rankers import get
    from libs.rankers.wire import title_table

    r = get(name)
    if not r.gathered:
        return module
    return WireForm(module, title_table(item_emb), r.spec.input_names, r.served_spec.input_names, r.gathered).eval()


def serving_form(module: nn.Module) -> nn.Module:
    """What export writes: each member's `freeze()` (per-call constants precomputed) where it has one."""
    if isinstance(module, SeedEnsemble):
        return SeedEnsemble([serving_form(m) for m in module.members]).eval()
    return module.freeze() if hasattr(module, "freeze") else module.eval()
