"""TensorRT engines (model.plan) for the GPU Triton configs, and the checks that can be done without TensorRT.

Where a GPU and the `tensorrt` package are present, `build_engine` parses the exported ONNX with TensorRT's ONNX
parser, builds an FP16 engine with one optimisation profile per model covering the serving shapes
(`optimisation_profile`), and `check_engine_parity` compares it with PyTorch on real batches before the plan is
written next to model.onnx. Where TensorRT is absent (this project's CPU machines: it is not installable here),
`tensorrt_status()` says so and the build step is skipped with that reason; nothing is faked.

Offline checks that always run (training/export/export_all.py and tests/unit/training/export):
- every op of the exported graph is in ONNX-TensorRT's supported-operator list for the targeted TensorRT version
  (data file `data/onnx_tensorrt_operators_<version>.json`, with its source URL), in the default ONNX domain, with
  the graph's opset inside the parser's range, and no scatter-style op at all (a project rule);
- only the declared axes are dynamic (batch axis + libs.model_io's -1 axes, named "batch" / spec.dynamic_axis);
- the optimisation profile covers the shapes the services send (1..max batch, 1..max candidates/tokens).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import onnx

from libs.model_io import ModelSpec

TARGET_TENSORRT = "10.15"
OPS_FILE = Path(__file__).with_name("data") / f"onnx_tensorrt_operators_{TARGET_TENSORRT}.json"
FORBIDDEN_OPS = {"Scatter", "ScatterElements", "ScatterND", "TensorScatter"}
WORKSPACE_BYTES = 2 << 30


class TensorRTUnavailable(RuntimeError):
    """TensorRT or a CUDA GPU is missing: engine build and engine parity are skipped (with this reason)."""


def tensorrt_status() -> tuple[bool, str]:
    """(available, reason). Never raises."""
    try:
        import tensorrt  # noqa: F401 - importing is the check
    except Exception as exc:  # noqa: BLE001 - ImportError or a broken install
        return False, f"tensorrt Python package not importable ({type(exc).__name__}: {exc})"
    try:
        import torch

        if not torch.cuda.is_available():
            return False, "no CUDA GPU visible to torch"
    except Exception as exc:  # noqa: BLE001 - a CUDA runtime in trouble, not only a missing one
        return False, f"torch.cuda unavailable ({exc})"
    return True, "tensorrt and a CUDA GPU are present"


# ---------------------------------------------------------------------------------------------- offline checks
def load_supported_ops(path: Path = OPS_FILE) -> dict:
    return json.loads(Path(path).read_text())


def graph_ops(model: onnx.ModelProto) -> Counter:
    """(domain, op_type) -> count over the graph and all subgraphs."""
    counts: Counter = Counter()

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            counts[(node.domain or "", node.op_type)] += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(model.graph)
    return counts


def check_ops(model: onnx.ModelProto, table: dict | None = None) -> list[str]:
    """Problems that would stop (or that the project forbids in) a TensorRT build; empty = fine."""
    table = table or load_supported_ops()
    supported = table["supported"]
    low, high = table["opset_range"]
    problems = []
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not low <= imp.version <= high:
            problems.append(f"opset {imp.version} outside TensorRT {table['tensorrt_version']}'s range {low}..{high}")
    for (domain, op), n in sorted(graph_ops(model).items()):
        if domain not in ("", "ai.onnx"):
            problems.append(f"{domain}::{op} x{n}: custom-domain op (needs a TensorRT plugin)")
        elif op in FORBIDDEN_OPS:
            problems.append(f"{op} x{n}: scatter-style op (forbidden in the exported rankers)")
        elif op not in supported:
            problems.append(f"{op} x{n}: not in ONNX-TensorRT {table['tensorrt_version']}'s supported operators")
    return problems


_ONNX_TO_TRT_TYPE = {
    onnx.TensorProto.FLOAT: "FP32",
    onnx.TensorProto.FLOAT16: "FP16",
    onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.INT32: "INT32",
    onnx.TensorProto.BOOL: "BOOL",
}


def check_io_types(model: onnx.ModelProto) -> list[str]:
    """Graph inputs/outputs must have types TensorRT accepts at the network boundary."""
    out = []
    for v in (*model.graph.input, *model.graph.output):
        t = v.type.tensor_type.elem_type
        if t not in _ONNX_TO_TRT_TYPE:
            out.append(f"{v.name}: element type {onnx.TensorProto.DataType.Name(t)} not supported as network I/O")
    return out


def declared_shape(spec: ModelSpec, name: str) -> list[int | str]:
    """Expected ONNX shape: "batch" first, then the spec dims with -1 as spec.dynamic_axis."""
    t = next(t for t in (*spec.inputs, *spec.outputs) if t.name == name)
    return ["batch", *[spec.dynamic_axis if d == -1 else d for d in t.shape]]


def check_dynamic_axes(model: onnx.ModelProto, spec: ModelSpec) -> list[str]:
    """Only the declared axes are dynamic; every other dim is static and equal to libs.model_io's."""
    problems = []
    graph_io = {v.name: v for v in (*model.graph.input, *model.graph.output)}
    for name in (*spec.input_names, *spec.output_names):
        if name not in graph_io:
            problems.append(f"{name}: missing from the ONNX graph")
            continue
        dims = graph_io[name].type.tensor_type.shape.dim
        got = [d.dim_param if d.dim_param else d.dim_value for d in dims]
        want = declared_shape(spec, name)
        if got != want:
            problems.append(f"{name}: ONNX shape {got}, declared {want}")
    extra = set(graph_io) - set(spec.input_names) - set(spec.output_names)
    problems += [f"{n}: graph I/O not declared in libs.model_io" for n in sorted(extra)]
    return problems


@dataclass(frozen=True)
class Profile:
    """TensorRT optimisation profile: per input, (min, opt, max) shapes."""

    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]

    def covers(self, name: str, shape: Iterable[int]) -> bool:
        lo, _, hi = self.shapes[name]
        shape = tuple(shape)
        return len(shape) == len(lo) and all(a <= s <= b for a, s, b in zip(lo, shape, hi))


def optimisation_profile(spec: ModelSpec, opt_batch: int = 1) -> Profile:
    """One profile covering batch 1..spec.max_batch_size and the dynamic axis 1..spec.max_dynamic."""
    shapes = {}
    for t in spec.inputs:
        lo = (1, *[1 if d == -1 else d for d in t.shape])
        opt = (opt_batch, *[spec.opt_dynamic if d == -1 else d for d in t.shape])
        hi = (spec.max_batch_size, *[spec.max_dynamic if d == -1 else d for d in t.shape])
        shapes[t.name] = (lo, opt, hi)
    return Profile(shapes)


def uncovered(spec: ModelSpec, batches: Iterable[dict[str, np.ndarray]], profile: Profile | None = None) -> list[str]:
    """Input shapes in `batches` (what the services send) that the profile does not cover."""
    profile = profile or optimisation_profile(spec)
    return [f"{n}{tuple(b[n].shape)}" for b in batches for n in spec.input_names if not profile.covers(n, b[n].shape)]


def offline_report(onnx_path: Path, spec: ModelSpec, serving_batches: list[dict[str, np.ndarray]]) -> dict:
    model = onnx.load(str(onnx_path), load_external_data=False)
    table = load_supported_ops()
    report = {
        "tensorrt_target": table["tensorrt_version"],
        "ops_source": table["source"],
        "ops": {op: n for (_, op), n in sorted(graph_ops(model).items())},
        "op_problems": check_ops(model, table),
        "io_type_problems": check_io_types(model),
        "dynamic_axis_problems": check_dynamic_axes(model, spec),
        "profile": {k: [list(s) for s in v] for k, v in optimisation_profile(spec).shapes.items()},
        "uncovered_serving_shapes": uncovered(spec, serving_batches),
    }
    report["ok"] = not any(
        report[k] for k in ("op_problems", "io_type_problems", "dynamic_axis_problems", "uncovered_serving_shapes")
    )
    return report


# ---------------------------------------------------------------------------------------------- engine (GPU only)
def build_engine(onnx_path: Path, spec: ModelSpec, plan_path: Path, fp16: bool = True) -> Path:
    """Parse ONNX with TensorRT's OnnxParser and build a serialized FP16 engine with `optimisation_profile(spec)`.

    Raises TensorRTUnavailable (with the reason) where TensorRT or a GPU is absent.
    """
    ok, reason = tensorrt_status()
    if not ok:
        raise TensorRTUnavailable(reason)
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in optimisation_profile(spec).shapes.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT engine build failed for {spec.name}")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(serialized))
    return plan_path


def run_engine(plan_path: Path, spec: ModelSpec, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run a serialized engine on one batch (torch CUDA tensors as device buffers)."""
    ok, reason = tensorrt_status()
    if not ok:
        raise TensorRTUnavailable(reason)
    import tensorrt as trt
    import torch

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(Path(plan_path).read_bytes())
    context = engine.create_execution_context()
    keep = {}
    for name in spec.input_names:
        # TensorRT casts INT64 inputs itself in 10.x; keep the dtype the engine reports.
        dtype = trt.nptype(engine.get_tensor_dtype(name))
        keep[name] = torch.from_numpy(np.ascontiguousarray(batch[name].astype(dtype))).cuda()
        context.set_input_shape(name, tuple(batch[name].shape))
        context.set_tensor_address(name, keep[name].data_ptr())
    outputs = {}
    for name in spec.output_names:
        shape = tuple(context.get_tensor_shape(name))
        dtype = trt.nptype(engine.get_tensor_dtype(name))
        outputs[name] = torch.empty(shape, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype, device="cuda")
        context.set_tensor_address(name, outputs[name].data_ptr())
    stream = torch.cuda.Stream()
    context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    return [outputs[n].float().cpu().numpy() for n in spec.output_names]


def check_engine_parity(
    plan_path: Path,
    spec: ModelSpec,
    batches: list[dict[str, np.ndarray]],
    reference: list[list[np.ndarray]],
    tolerance: float,
) -> dict:
    """Max abs diff between the engine and the PyTorch outputs `reference` (one list per batch)."""
    worst = {n: 0.0 for n in spec.output_names}
    for batch, ref in zip(batches, reference):
        for name, got, want in zip(spec.output_names, run_engine(plan_path, spec, batch), ref):
            worst[name] = max(worst[name], float(np.abs(got - want).max()))
    return {"max_abs_diff": worst, "tolerance": tolerance, "ok": all(v <= tolerance for v in worst.values())}
