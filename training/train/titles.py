"""Title embeddings of the whole catalogue with text_encoder (PyTorch, same tokenisation as the services)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from libs.model_io import ITEM_EMBEDDINGS_FILE


def encode_titles(titles: list[str], out_dir: Path, key: str, progress: bool = True, model=None) -> np.ndarray:
    """[n_items, 384] float32, cached in out_dir/item_embeddings.npy (reused when `key` and count match)."""
    out_dir = Path(out_dir)
    path, meta = out_dir / ITEM_EMBEDDINGS_FILE, out_dir / "item_embeddings.json"
    if path.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        if info.get("key") == key and info.get("n_items") == len(titles):
            return np.load(path)
    from training.models.text_encoder import encode_texts, load_text_encoder

    emb = encode_texts(model or load_text_encoder(), titles, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    meta.write_text(json.dumps({"key": key, "n_items": len(titles), "dim": int(emb.shape[1])}) + "\n")
    return emb
