"""Triton Python-backend model that runs the model's ONNX file with ONNX Runtime.

Used by the CPU configurations (`configs/cpu.pbtxt`): the pytriton build of Triton has no ONNX
Runtime backend, so each model's version folder holds a one-line `model.py` re-exporting
`TritonPythonModel` from here, next to the same `model.onnx` the GPU engine is built from.
Requests that arrive together (dynamic batching) are concatenated along the batch axis when
their other dimensions agree, so one ORT call serves them all.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils  # provided by the Python backend stub

from libs.config import OrtSettings


def _session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _groups(arrays: list[dict[str, np.ndarray]], wanted: list[tuple[str, ...]]) -> list[list[int]]:
    """Indices of requests whose inputs can be concatenated along axis 0 (and that ask for the same outputs)."""
    groups: dict[tuple, list[int]] = {}
    for i, inputs in enumerate(arrays):
        key = tuple((name, a.dtype.str, a.shape[1:]) for name, a in sorted(inputs.items()))
        groups.setdefault((key, wanted[i]), []).append(i)
    return list(groups.values())


def _requested(request, names: list[str]) -> tuple[str, ...]:  # request: a pb_utils.InferenceRequest
    """The outputs the caller asked for, in model order: ranking and explanation read only `score`, so the
    attention maps ([B, C, L] per scenario) are neither copied to Triton nor sent. All when it asked for none."""
    try:
        asked = set(request.requested_output_names())
    except AttributeError:  # an older stub
        return tuple(names)
    return tuple(n for n in names if n in asked) or tuple(names)


def _as_numpy(tensor) -> np.ndarray:
    """Input tensor as numpy through DLPack.

    The 2.51 stub's `Tensor.as_numpy()` is built against numpy 1.x: under numpy 2 it returns zeros of the right
    shape, and `pb_utils.Tensor(name, ndarray)` sends an empty payload. DLPack goes around both.
    """
    return np.from_dlpack(tensor)


def _to_tensor(name: str, array: np.ndarray):
    return pb_utils.Tensor.from_dlpack(name, np.ascontiguousarray(array))


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        version_dir = Path(args["model_repository"]) / args["model_version"]
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        threads = int(params.get("intra_op_num_threads", OrtSettings().threads))
        self.session = _session(version_dir / params.get("onnx_file", "model.onnx"), threads)
        self.input_names = [i["name"] for i in config["input"]]
        self.output_names = [o["name"] for o in config["output"]]

    def execute(self, requests: list) -> list:
        arrays = [{n: _as_numpy(pb_utils.get_input_tensor_by_name(r, n)) for n in self.input_names} for r in requests]
        wanted = [_requested(r, self.output_names) for r in requests]
        responses: list = [None] * len(requests)
        for group in _groups(arrays, wanted):
            feed = {n: np.concatenate([arrays[i][n] for i in group], axis=0) for n in self.input_names}
            names = list(wanted[group[0]])
            try:
                outputs = self.session.run(names, feed)
            except Exception as exc:  # noqa: BLE001 - report to the caller, keep serving
                for i in group:
                    responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(f"onnxruntime: {exc}"))
                continue
            offset = 0
            for i in group:
                n = next(iter(arrays[i].values())).shape[0]
                tensors = [_to_tensor(name, out[offset : offset + n]) for name, out in zip(names, outputs)]
                responses[i] = pb_utils.InferenceResponse(output_tensors=tensors)
                offset += n
        return responses
