from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from libs.rankers import specs
from training.export.onnx_export import MODEL_PY
from training.export.triton_configs import (
    DEFAULT_REPOSITORY,
    cpu_config,
    expected_files,
    gpu_config,
    onnx_config,
    stale,
)


def test_committed_configs_equal_generated():
    assert stale() == [], "run `python -m training.export.triton_configs` and commit the result"
    for path, text in expected_files().items():
        assert path.read_text() == text


def test_gpu_and_cpu_configs():
    for spec in specs().values():
        gpu = text_format.Parse((DEFAULT_REPOSITORY / spec.name / "config.pbtxt").read_text(), mc.ModelConfig())
        assert gpu.platform == "tensorrt_plan" and gpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
        assert gpu.HasField("dynamic_batching") and len(gpu.model_warmup) == 1
        cpu = text_format.Parse(
            (DEFAULT_REPOSITORY / spec.name / "configs" / "cpu.pbtxt").read_text(), mc.ModelConfig()
        )
        assert cpu.backend == "python" and cpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
        assert cpu.HasField("dynamic_batching") and "intra_op_num_threads" in cpu.parameters
        for config in (gpu, cpu):
            assert config.name == spec.name and config.max_batch_size == spec.max_batch_size
            assert [i.name for i in config.input] == spec.input_names
            assert [o.name for o in config.output] == spec.output_names
            assert [list(i.dims) for i in config.input] == [list(t.shape) for t in spec.inputs]
        assert gpu_config(spec) == gpu and cpu_config(spec) == cpu


def test_onnx_config_is_the_cpu_config_on_the_onnx_runtime_backend():
    for spec in specs().values():
        cpu, onnx = cpu_config(spec), onnx_config(spec)
        assert onnx.backend == "onnxruntime" and onnx.platform == "onnxruntime_onnx"
        assert onnx.default_model_filename == "model.onnx" and "onnx_file" not in onnx.parameters
        assert onnx.parameters["intra_op_thread_count"] == cpu.parameters["intra_op_num_threads"]
        for field in (
            "input",
            "output",
            "instance_group",
            "dynamic_batching",
            "model_warmup",
            "response_cache",
            "max_batch_size",
        ):
            assert getattr(onnx, field) == getattr(cpu, field), field


def test_version_folders_hold_the_python_backend_stub():
    for spec in specs().values():
        model_py = DEFAULT_REPOSITORY / spec.name / "1" / "model.py"
        assert model_py.read_text() == MODEL_PY


def test_every_config_rejects_requests_whose_timeout_ran_out_in_the_queue():
    for spec in specs().values():
        for config in (gpu_config(spec), cpu_config(spec)):
            policy = config.dynamic_batching.default_queue_policy
            assert policy.timeout_action == mc.ModelQueuePolicy.REJECT
            assert policy.allow_timeout_override  # the client sends each request's remaining time
            assert 0 < policy.default_timeout_microseconds <= 5_000_000
            assert policy.max_queue_size > 0


def test_only_the_text_encoder_caches_responses():
    """The encoder is a pure function of its input (a hit is exact) and asked for the same query by retrieval and
    ranking; ranker inputs carry each user's history, so caching them would only cost memory."""
    for spec in specs().values():
        for config in (gpu_config(spec), cpu_config(spec)):
            assert config.response_cache.enable == (spec.name == "text_encoder"), spec.name
