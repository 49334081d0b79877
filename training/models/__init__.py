"""PyTorch modules of the served models (text_encoder, transformer_ranker, gnn_ranker)."""
