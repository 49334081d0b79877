"""Feature assembly shared by training, evaluation and the services (pure numpy): the `FeatureStore` of purchases,
popularity and co-purchase neighbours at a reference time (store.py), item popularity (popularity.py), per-customer
contexts and features (user.py), the candidate pool (pool.py), and the helpers each ranker's input builder
(libs/rankers/) uses to shape them into tensors (inputs.py)."""

from libs.features.inputs import cand_ids, query_inputs, stack
from libs.features.pool import (
    POOL_CO_PURCHASE,
    POOL_HISTORY,
    POOL_MAX,
    POOL_N_SIMILAR,
    POOL_POPULAR,
    POOL_SIMILAR,
    candidate_parts,
    candidate_pool,
)
from libs.features.popularity import (
    DAY,
    POP_FEATURE_NAMES,
    Pop,
    pop_features_of,
    popularity_features,
    orders_in_window,
    popularity_order,
    season_features,
    similar_customers_score,
)
from libs.features.store import FeatureStore, copurchase_neighbours
from libs.features.user import (
    EDGE_FEATURE_NAMES,
    HIST_FEATURE_NAMES,
    REPEAT_FEATURE_NAMES,
    UserContext,
    cycle_features,
    group_users,
    history_features,
    item_repurchase_cycle,
    repeat_features,
    to_seconds,
    user_neighbours,
)
