"""What travels to a served ranker: ids, not the title embeddings the model can look up itself.

A ranker is trained on embedding inputs (e.g. hist_emb [B, L, 384] next to hist_ids), but every such embedding
is a row of the catalogue's title table: row `id` = item_idx + 1, zeros for id 0 (padding). The served model (the
export's wire form, training.models.rankers.WireForm) holds that table and gathers the rows itself, so the
request carries ids only. Candidates are the one place a row may be missing from the table - a product newer
than the model (id 0) is scored from its own title embedding - so their embeddings travel as `new_cand_emb`:
the rows of id-0 candidates (zeros elsewhere), or one zero row per scenario, broadcast, when every candidate is
a catalogue product (the usual case). For an explanation call of 62 scenarios x 20 candidates this cuts the
request from ~6.7 MB to ~0.1 MB; the scores are the same numbers (parity-checked at export against the trained
module on its embedding inputs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from libs.model_io import CAND_EMB, CAND_IDS, NEW_CAND_EMB, TEXT_DIM, ModelSpec, Tensor

# (embedding input, ids input) of a candidate side: gathered, with new products' rows travelling.
CANDIDATES = (CAND_EMB, CAND_IDS)


def served_spec(spec: ModelSpec, gathered: Sequence[tuple[str, str]]) -> ModelSpec:
    """The spec of the served (wire) form: every gathered embedding input dropped, the candidates' replaced by
    new_cand_emb at the same position."""
    emb_names = dict(gathered)
    inputs: list[Tensor] = []
    for t in spec.inputs:
        if (t.name, emb_names.get(t.name)) == CANDIDATES:
            inputs.append(Tensor(NEW_CAND_EMB, "float32", (-1, TEXT_DIM)))
        elif t.name not in emb_names:
            inputs.append(t)
    return ModelSpec(
        spec.name,
        tuple(inputs),
        spec.outputs,
        spec.max_batch_size,
        spec.dynamic_axis,
        spec.max_dynamic,
        spec.opt_dynamic,
    )


def to_wire(inputs: Mapping[str, np.ndarray], gathered: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
    """Model inputs (as libs.rankers' builders make them) -> what the served form reads. Idempotent."""
    emb_names = dict(gathered)
    if not any(name in inputs for name in emb_names):
        return dict(inputs)  # already in wire form
    out = {k: v for k, v in inputs.items() if k not in emb_names}
    if emb_names.get(CAND_EMB) == CAND_IDS:
        ids, emb = inputs[CAND_IDS], inputs[CAND_EMB]
        new = ids == 0
        out[NEW_CAND_EMB] = (
            np.where(new[..., None], emb, 0.0).astype(np.float32)
            if new.any()
            else np.zeros((emb.shape[0], 1, emb.shape[-1]), np.float32)
        )
    return out


def title_table(item_emb: np.ndarray) -> np.ndarray:
    """[n_items + 1, 384]: row id = item_idx + 1, row 0 = zeros (padding / unknown)."""
    item_emb = np.asarray(item_emb, np.float32)
    return np.vstack([np.zeros((1, item_emb.shape[1]), np.float32), item_emb])
