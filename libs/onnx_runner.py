"""The served ONNX files run in-process with ONNX Runtime, behind the same `infer` signature as TritonClient.

Used where Triton's round trip would only add noise: offline evaluation (fidelity) and the in-process side of
`make bench`. The files are exactly those in triton_models/<model>/<version>/model.onnx.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from libs.config import REPOSITORY


class OnnxModels:
    def __init__(self, repository: Path = REPOSITORY, version: str = "1", threads: int = 1) -> None:
        self.repository = repository
        self.version = version
        self.threads = threads
        self._sessions: dict[str, ort.InferenceSession] = {}

    def session(self, model: str) -> ort.InferenceSession:
        if model not in self._sessions:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            path = self.repository / model / self.version / "model.onnx"
            self._sessions[model] = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        return self._sessions[model]

    def run(self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        results = self.session(model).run(list(outputs), dict(inputs))
        return dict(zip(outputs, results))

    async def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str], timeout_s: float | None = None
    ) -> dict[str, np.ndarray]:
        return self.run(model, inputs, outputs)
