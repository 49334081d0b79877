"""Feature assembly shared by training, evaluation and the services (pure numpy): the `FeatureStore` of purchases,
popularity and co-purchase neighbours at a reference time, user contexts with fresh events, and the feature
primitives each ranker's input builder (libs/rankers/) assembles into its tensors."""
from libs.features.popularity import (
    POP_FEATURE_NAMES,
    Pop,
    pop_features_of,
    popularity_features,
    popularity_order,
    season_features,
    similar_customers_score,
)
from libs.features.store import (
    EDGE_FEATURE_NAMES,
    HIST_FEATURE_NAMES,
    REPEAT_FEATURE_NAMES,
    FeatureStore,
    POOL_MAX,
    candidate_parts,
    candidate_pool,
    UserContext,
    copurchase_neighbours,
    cycle_features,
    item_repurchase_cycle,
    group_users,
    cand_ids,
    history_features,
    query_inputs,
    repeat_features,
    stack,
    to_seconds,
    user_neighbours,
)
