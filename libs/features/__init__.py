"""Feature assembly for transformer_ranker and gnn_ranker (pure numpy; shared by training, eval and services).

Start-up (once):
    ds = libs.catalog.store.load_dataset()
    item_emb = np.load("artifacts/models/item_embeddings.npy")          # [n_items, 384], row = item_idx
    store = FeatureStore.build(ds.purchases, item_emb, now=<end of data>, guest_sales=ds.guest_sales,
                               product_ids=ds.items["product_id"])
    fusion = load_fusion("artifacts/models/fusion.json")["weights"]

Ranking (one Triton call per model, B = 1 scenario, C = candidates):
    ctx = store.user_context(user_id, fresh=[(product_id, ts), ...])    # stored history + RecordEvents purchases
    cand = np.array([ds.item_idx(p) for p in product_ids])               # -1 + new_cand_emb for unseen products
    t_in = transformer_inputs(store, ctx, cand, query_emb)               # query_emb: text_encoder output or None
    g_in = gnn_inputs(store, ctx, cand)
    out_t = triton.infer("transformer_ranker", t_in, ["score", "hist_attention"])
    out_g = triton.infer("gnn_ranker", g_in, ["score", "user_attention", "cand_nbr_attention"])
    fused = fuse({"transformer_ranker": out_t["score"], "gnn_ranker": out_g["score"]}, fusion)   # [1, C]

Explanations (one batched call per model; row 0 = unmasked, row i = evidence i-1 masked):
    ev = [Evidence("history_item", idx) for idx in recent_items] + [Evidence("repeat"), Evidence("popularity"),
          Evidence("query")] + [Evidence("query_embedding", emb_without_term_k) for k in terms]
    batch = masked_scenarios(t_in_for_top_items, ev)
    drops = effects(triton.infer("transformer_ranker", batch, ["score"])["score"])   # [len(ev), C]

With no retrieval stage (recommendations), `candidate_pool(store, ctx)` gives the candidates the rankers were
trained on (own past items + co-purchase neighbours of recent items + 100 most popular).
"""
from libs.features.fusion import fuse, load_fusion, standardise  # noqa: F401
from libs.features.explain import Evidence, effects, mask_one, masked_scenarios  # noqa: F401
from libs.features.store import (  # noqa: F401
    EDGE_FEATURE_NAMES,
    HIST_FEATURE_NAMES,
    POP_FEATURE_NAMES,
    REPEAT_FEATURE_NAMES,
    FeatureStore,
    candidate_pool,
    UserContext,
    copurchase_neighbours,
    gnn_inputs,
    group_users,
    history_features,
    popularity_features,
    repeat_features,
    stack,
    to_seconds,
    transformer_inputs,
    user_neighbours,
)
