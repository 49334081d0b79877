"""Feature assembly shared by training, evaluation and the services (pure numpy): the `FeatureStore` of purchases,
popularity and co-purchase neighbours at a reference time, user contexts with fresh events, and the feature
primitives each ranker's input builder (libs/rankers/) assembles into its tensors."""
from libs.features.store import (  # noqa: F401
    EDGE_FEATURE_NAMES,
    HIST_FEATURE_NAMES,
    POP_FEATURE_NAMES,
    REPEAT_FEATURE_NAMES,
    FeatureStore,
    candidate_pool,
    UserContext,
    copurchase_neighbours,
    group_users,
    cand_ids,
    history_features,
    pop_features_of,
    query_inputs,
    popularity_features,
    repeat_features,
    stack,
    to_seconds,
    user_neighbours,
)
