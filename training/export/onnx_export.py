"""PyTorch -> ONNX with dynamic batch and candidate/token axes, parity-checked before a version is written.

`export_model` exports to a temporary file, runs the ONNX graph with ONNX Runtime on the given real batches, compares
every output with the PyTorch module's, and only when the largest absolute difference is within tolerance moves the
file to `triton_models/<name>/<version>/model.onnx` (plus the one-line `model.py` of the CPU config). A failed
check raises ParityError and leaves the previous version untouched.

The TorchScript-based exporter (`dynamo=False`, opset 17) is used: it maps these models to a small, TensorRT-friendly
set of standard ops (see training/export/trt_ops.py for the check).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from libs.config import REPOSITORY
from libs.model_io import ModelSpec

OPSET = 17
MODEL_PY = "from libs.triton.ort_model import TritonPythonModel\n"
DEFAULT_REPOSITORY = REPOSITORY


class ParityError(AssertionError):
    """ONNX Runtime outputs differ from PyTorch beyond the tolerance."""


@dataclass
class ParityReport:
    model: str
    max_abs_diff: dict[str, float]
    tolerance: float
    batches: int
    shapes: list[dict[str, list[int]]]

    @property
    def ok(self) -> bool:
        return all(v <= self.tolerance for v in self.max_abs_diff.values())

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def dynamic_axes(spec: ModelSpec) -> dict[str, dict[int, str]]:
    """Axis 0 = "batch" for every tensor; each -1 in a declared shape = spec.dynamic_axis. Nothing else."""
    axes: dict[str, dict[int, str]] = {}
    for t in (*spec.inputs, *spec.outputs):
        axes[t.name] = {0: "batch"} | {i + 1: spec.dynamic_axis for i, d in enumerate(t.shape) if d == -1}
    return axes


def export_onnx(module: torch.nn.Module, spec: ModelSpec, example: dict[str, np.ndarray], path: Path) -> Path:
    """Export `module` (forward(*inputs in spec order) -> outputs in spec order) to a single ONNX file."""
    module = module.eval()
    args = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in spec.input_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=spec.input_names,
            output_names=spec.output_names,
            dynamic_axes=dynamic_axes(spec),
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    return path


def ort_session(path: Path, threads: int = 2) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


@torch.no_grad()
def torch_outputs(module: torch.nn.Module, spec: ModelSpec, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
    args = tuple(torch.from_numpy(np.ascontiguousarray(batch[n])) for n in spec.input_names)
    out = module.eval()(*args)
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o.numpy() for o in out]


def check_parity(
    module: torch.nn.Module,
    spec: ModelSpec,
    onnx_path: Path,
    batches: list[dict[str, np.ndarray]],
    tolerance: float,
    served: ModelSpec | None = None,
    to_wire: Callable[[dict], dict] | None = None,
) -> ParityReport:
    """Max abs difference per output between ONNX Runtime and PyTorch over `batches` (real inputs). With `served`
    and `to_wire` (a ranker's wire format), PyTorch reads the batch as trained and ONNX its wire form."""
    sess = ort_session(onnx_path)
    served = served or spec
    worst = {n: 0.0 for n in spec.output_names}
    for batch in batches:
        ref = torch_outputs(module, spec, batch)
        wire = to_wire(batch) if to_wire else batch
        got = sess.run(spec.output_names, {n: wire[n] for n in served.input_names})
        for name, r, g in zip(spec.output_names, ref, got):
            if r.shape != g.shape:
                raise ParityError(f"{spec.name}.{name}: shape {g.shape} from ONNX, {r.shape} from PyTorch")
            if not np.isfinite(g).all():
                raise ParityError(f"{spec.name}.{name}: non-finite ONNX output")
            worst[name] = max(worst[name], float(np.abs(r.astype(np.float64) - g).max()))
    shapes = [{n: list(b[n].shape) for n in spec.input_names} for b in batches]  # as the module reads them
    return ParityReport(spec.name, worst, tolerance, len(batches), shapes)


def export_model(
    module: torch.nn.Module,
    spec: ModelSpec,
    batches: list[dict[str, np.ndarray]],
    repository: Path = DEFAULT_REPOSITORY,
    version: int = 1,
    tolerance: float = 1e-4,
    reference: torch.nn.Module | None = None,
    served: ModelSpec | None = None,
    to_wire: Callable[[dict], dict] | None = None,
) -> ParityReport:
    """Export, parity-check on `batches`, then write `<repository>/<name>/<version>/model.onnx` + model.py.

    `reference` (default: `module`) is what the ONNX must match: the trained module when `module` is its serving
    form, so the check also proves the serving form scores exactly like the model that was trained. `served` /
    `to_wire`: `module` reads the wire form of the inputs (a ranker's served spec) while `reference` reads `spec`.
    Raises ParityError (and writes nothing) when any output differs by more than `tolerance`.
    """
    version_dir = Path(repository) / spec.name / str(version)
    with tempfile.TemporaryDirectory(prefix=f"export-{spec.name}-") as tmp:
        example = to_wire(batches[0]) if to_wire else batches[0]
        onnx_path = export_onnx(module, served or spec, example, Path(tmp) / "model.onnx")
        report = check_parity(
            reference if reference is not None else module, spec, onnx_path, batches, tolerance, served, to_wire
        )
        if not report.ok:
            raise ParityError(f"{spec.name}: ONNX vs PyTorch max abs diff {report.max_abs_diff} > {tolerance}")
        version_dir.mkdir(parents=True, exist_ok=True)
        staged = version_dir / f".model.onnx.{os.getpid()}"
        shutil.copyfile(onnx_path, staged)
        os.replace(staged, version_dir / "model.onnx")
    (version_dir / "model.py").write_text(MODEL_PY)
    return report
