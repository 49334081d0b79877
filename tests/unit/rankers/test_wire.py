"""The wire format (libs/rankers/wire.py): what a served ranker reads instead of the title embeddings."""

import numpy as np

from libs.model_io import CAND_EMB, CAND_IDS, HIST_EMB, HIST_IDS, HIST_MASK, NEW_CAND_EMB
from libs.rankers import get as ranker
from libs.rankers.wire import title_table, to_wire

GATHERED = ((HIST_EMB, HIST_IDS), (CAND_EMB, CAND_IDS))


def _inputs(cand_ids: list[int]) -> dict[str, np.ndarray]:
    emb = np.arange(4 * 3, dtype=np.float32).reshape(4, 3) + 1.0
    table = title_table(emb)
    ids = np.array([[0, 2, 4]])
    cand = np.array([cand_ids])
    cand_emb = table[cand].copy()
    cand_emb[cand == 0] = 7.0  # a product newer than the model: its own title embedding
    return {
        HIST_IDS: ids,
        HIST_EMB: table[ids],
        HIST_MASK: (ids > 0).astype(np.float32),
        CAND_IDS: cand,
        CAND_EMB: cand_emb,
    }


def test_table_row_is_id_and_row_zero_is_padding():
    table = title_table(np.ones((3, 2), np.float32))
    assert table.shape == (4, 2) and not table[0].any() and table[1:].all()


def test_only_ids_travel_when_every_candidate_is_known():
    wire = to_wire(_inputs([1, 3]), GATHERED)
    assert set(wire) == {HIST_IDS, HIST_MASK, CAND_IDS, NEW_CAND_EMB}
    assert wire[NEW_CAND_EMB].shape == (1, 1, 3) and not wire[NEW_CAND_EMB].any()
    assert to_wire(wire, GATHERED) == wire  # idempotent


def test_a_new_products_embedding_travels_and_the_served_gather_rebuilds_every_row():
    x = _inputs([1, 0, 3])
    wire = to_wire(x, GATHERED)
    assert wire[NEW_CAND_EMB].shape == (1, 3, 3)
    table = title_table(np.arange(12, dtype=np.float32).reshape(4, 3) + 1.0)
    # What the served model computes (training.models.rankers.WireForm), in numpy:
    np.testing.assert_array_equal(table[wire[CAND_IDS]] + wire[NEW_CAND_EMB], x[CAND_EMB])
    np.testing.assert_array_equal(table[wire[HIST_IDS]], x[HIST_EMB])


def test_served_specs_drop_exactly_the_gathered_inputs():
    for name in ("transformer_ranker", "gnn_ranker"):
        r = ranker(name)
        dropped = set(r.spec.input_names) - set(r.served_spec.input_names)
        assert dropped == {emb for emb, _ in r.gathered}
        assert set(r.served_spec.input_names) - set(r.spec.input_names) == {NEW_CAND_EMB}
