"""Model versions as Triton reports them, cached (they change only when the repository is reloaded)."""
from __future__ import annotations

from libs.triton.client import TritonClient


class VersionCache:
    def __init__(self, client: TritonClient) -> None:
        self.client = client
        self._known: dict[str, str] = {}

    async def __call__(self, model: str) -> str:
        if model not in self._known:
            version = await self.client.model_version(model)
            if not version:
                return ""  # not cached: ask again once Triton is back
            self._known[model] = version
        return self._known[model]
