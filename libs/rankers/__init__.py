"""Rankers: the registry (libs/rankers/registry.py) and one module per built-in ranker, registered on import."""

from libs.rankers.registry import Ranker, get, names, rankers, register, specs, unregister, variants

# The registry lines: one per built-in ranker.
from libs.rankers import transformer_ranker, gnn_ranker
