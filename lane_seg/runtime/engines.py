"""Inference engines behind one small interface: preprocessed batch in, logits out.

Every engine takes the float32 [N, 3, H, W] tensor that `lane_seg.preprocess.to_input` makes and
returns float32 logits [N, 1, H, W]; pre- and postprocessing live in
`lane_seg.runtime.segmenter` (and the scoring loop of lane_seg.training.eval.score), never here,
so a model behaves the same on every engine. The model's `ModelInfo` (docs/architecture.md,
contract 2) comes from the ONNX `metadata_props` or the checkpoint's "info" dict.

Engines: onnxruntime (CPU, plus the CUDA and TensorRT execution providers when the installed
onnxruntime has them), OpenVINO (when the `openvino` wheel is installed) for ONNX files, and
PyTorch for `.pt` checkpoints and for models held in memory. `Engine.infer` is the one way the
package turns a model into logits: the node, `infer`, `eval`, `bench` and `quantize` all call it
(and time it with lane_seg.runtime.timing). `engine="auto"` times every engine that can run the
model on this machine and keeps the fastest.

No ROS import here; torch and openvino are imported only when an engine needs them.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.artifact import INPUT_NAME, OUTPUT_NAME, ModelInfo
from lane_seg.errors import LaneSegError
from lane_seg.runtime.timing import time_calls

ENGINE_NAMES = (
    "auto",
    "onnxruntime",
    "onnxruntime-cpu",
    "onnxruntime-cuda",
    "onnxruntime-tensorrt",
    "openvino",
    "torch",
)
# onnxruntime execution providers by engine name, most preferred first.
ORT_PROVIDERS = {
    "onnxruntime": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    "onnxruntime-cpu": ["CPUExecutionProvider"],
    "onnxruntime-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "onnxruntime-tensorrt": [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ],
}
AUTO_WARMUP = 2
AUTO_RUNS = 5


class Engine:
    """One loaded model. `infer` is called from one thread at a time."""

    name: str = "engine"

    def __init__(self, path: Path, info: ModelInfo, threads: int) -> None:
        self.path = path
        self.info = info
        self.threads = threads
        # Filled by `load_engine(engine="auto")`: median ms per engine name it tried.
        self.auto_timings: dict[str, float] = {}

    @property
    def device(self) -> str:
        """Where it actually runs (e.g. the execution provider that onnxruntime chose)."""
        return "cpu"

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N, 3, H, W] -> float32 logits [N, 1, H, W]."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({self.device}, threads={self.threads or 'default'})"

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        cfg = self.info.preprocess
        return (batch, 3, cfg.height, cfg.width)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise LaneSegError(f"model file not found: {path}; pass the path of an .onnx or .pt model")
    if not path.is_file():
        raise LaneSegError(f"model path is not a file: {path}")
    if path.stat().st_size == 0:
        raise LaneSegError(f"model file is empty: {path}; re-export it")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# ---------------------------------------------------------------- onnxruntime


def _ort_session(path: Path, providers: list[str], threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = max(0, threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: the CLI and the node report what matters
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise LaneSegError(
            f"{path} is not a loadable ONNX model ({_first_line(exc)}); re-export it"
        ) from exc


def _onnx_info(path: Path, session: Any) -> ModelInfo:
    """The ModelInfo in an ONNX file's metadata, its input size equal to the graph's own (the
    export fixed it at a multiple of the model's stride), so no engine sizes its input from a
    tampered number."""
    info = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, source=str(path))
    pre = info.preprocess
    graph = [list(i.shape[2:]) for i in session.get_inputs() if i.name == INPUT_NAME]
    for hw in graph:  # a dynamic (named) size is taken as the metadata says
        if all(isinstance(d, int) for d in hw) and hw != [pre.height, pre.width]:
            raise LaneSegError(
                f"{path}: its metadata says input {pre.width}x{pre.height}, its graph takes "
                f"{hw[1]}x{hw[0]} (WxH); re-export the model"
            )
    return info


def _check_io(path: Path, inputs: list[str], outputs: list[str]) -> None:
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        raise LaneSegError(
            f"{path} has inputs {inputs} and outputs {outputs}; a lane_seg model has input "
            f"{INPUT_NAME!r} and output {OUTPUT_NAME!r} (export it with lane_seg)"
        )


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int = 0, variant: str = "onnxruntime") -> None:
        import onnxruntime as ort

        _check_file(path)
        available = set(ort.get_available_providers())
        wanted = [p for p in ORT_PROVIDERS[variant] if p in available]
        needed = ORT_PROVIDERS[variant][0]
        if variant not in ("onnxruntime", "onnxruntime-cpu") and needed not in available:
            raise LaneSegError(
                f"engine {variant!r} needs {needed}, which this onnxruntime lacks (it has "
                f"{', '.join(sorted(available))}); install onnxruntime-gpu or use onnxruntime"
            )
        self.session = _ort_session(path, wanted, threads)
        super().__init__(path, _onnx_info(path, self.session), threads)
        _check_io(
            path,
            [i.name for i in self.session.get_inputs()],
            [o.name for o in self.session.get_outputs()],
        )
        self.name = variant

    @property
    def device(self) -> str:
        return self.session.get_providers()[0]

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]


def read_onnx_info(path: str | Path) -> ModelInfo:
    """The ModelInfo inside an ONNX file, read through onnxruntime's model metadata."""
    path = Path(path)
    _check_file(path)
    return _onnx_info(path, _ort_session(path, ["CPUExecutionProvider"], 1))


# ---------------------------------------------------------------- OpenVINO


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class OpenVinoEngine(Engine):
    name = "openvino"

    def __init__(self, path: Path, threads: int = 0) -> None:
        if not openvino_available():
            raise LaneSegError("engine 'openvino' needs the openvino wheel: pip install openvino")
        import openvino as ov

        # Metadata through onnxruntime, the one reader of ONNX metadata_props here.
        info = read_onnx_info(path)
        super().__init__(path, info, threads)
        core = ov.Core()
        # f32: OpenVINO would otherwise run fp32 layers in bf16 on CPUs that have it, and the
        # mask would differ from every other engine's. int8 QDQ layers still run in int8.
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            model = core.read_model(str(path))
            _check_io(
                path,
                [n for i in model.inputs for n in i.get_names()],
                [n for o in model.outputs for n in o.get_names()],
            )
            self.compiled = core.compile_model(model, "CPU", config)
        except LaneSegError:
            raise
        except Exception as exc:
            raise LaneSegError(f"OpenVINO cannot load {path}: {_first_line(exc)}") from exc
        self.request = self.compiled.create_infer_request()
        self._output = self.compiled.output(OUTPUT_NAME)

    @property
    def device(self) -> str:
        return "CPU"

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.request.infer({INPUT_NAME: batch})
        return np.array(self.request.get_tensor(self._output).data, copy=True)


# ---------------------------------------------------------------- PyTorch


class TorchEngine(Engine):
    """A torch.nn.Module: a checkpoint's model (`TorchEngine.load`), or one made in memory (a
    torch.ao int8, QAT or fake-quant model) that `lane-seg bench` and `quantize` measure."""

    name = "torch"

    def __init__(
        self,
        model: Any,
        info: ModelInfo,
        path: Path | None = None,
        threads: int = 0,
        device: str = "cpu",
        half: bool = False,
    ):
        import torch

        super().__init__(path or Path("<in memory>"), info, threads)
        if threads > 0:
            torch.set_num_threads(threads)
        self._torch = torch
        self._device = torch.device(device)
        self._dtype = torch.float16 if half else torch.float32
        if self._device.type != "cpu" or half:
            model = model.to(device=self._device, dtype=self._dtype)
        self.model = model.eval()

    @property
    def device(self) -> str:
        if self._device.type == "cuda":
            return f"{self._device} ({self._torch.cuda.get_device_name(self._device)})"
        return str(self._device)

    @classmethod
    def load(cls, path: Path, threads: int = 0) -> TorchEngine:
        from lane_seg.models.checkpoint import load_checkpoint, model_from_checkpoint

        _check_file(path)
        ckpt = load_checkpoint(path)  # weights_only=True; LaneSegError for foreign files
        try:
            model, info = model_from_checkpoint(ckpt, source=str(path))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise LaneSegError(
                f"{path}: cannot rebuild the model from its weights ({_first_line(exc)})"
            ) from exc
        return cls(model, info, path, threads)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Batch in and logits out through host memory, so a GPU's times include the copies."""
        x = self._torch.from_numpy(np.ascontiguousarray(batch))
        with self._torch.inference_mode():
            out = self.model(x.to(device=self._device, dtype=self._dtype))
        return out.float().cpu().numpy()


# ---------------------------------------------------------------- choosing


def baseline_engine(path: str | Path) -> str:
    """The engine every model file runs on: torch for checkpoints, onnxruntime's CPU provider
    for ONNX (what `lane-seg eval` uses, and what `auto` cannot do without)."""
    return "torch" if Path(path).suffix == ".pt" else "onnxruntime-cpu"


def candidate_engines(path: str | Path) -> list[str]:
    """Engine names that can run this model file on this machine, for `auto`."""
    path = Path(path)
    if path.suffix == ".pt":
        return ["torch"]
    import onnxruntime as ort

    names = ["onnxruntime-cpu"]
    available = set(ort.get_available_providers())
    if "CUDAExecutionProvider" in available:
        names.append("onnxruntime-cuda")
    if "TensorrtExecutionProvider" in available:
        names.append("onnxruntime-tensorrt")
    if openvino_available():
        names.append("openvino")
    return names


def _make(path: Path, name: str, threads: int) -> Engine:
    if name == "torch":
        if path.suffix != ".pt":
            raise LaneSegError(f"engine 'torch' runs .pt checkpoints, not {path.name}")
        return TorchEngine.load(path, threads)
    if path.suffix == ".pt":
        raise LaneSegError(
            f"engine {name!r} runs ONNX files; {path.name} is a checkpoint (use --engine torch "
            "or export it to ONNX)"
        )
    if name == "openvino":
        return OpenVinoEngine(path, threads)
    if name in ORT_PROVIDERS:
        return OnnxRuntimeEngine(path, threads, variant=name)
    raise LaneSegError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")


def time_engine(engine: Engine, runs: int = AUTO_RUNS, warmup: int = AUTO_WARMUP) -> list[float]:
    """Milliseconds per batch-1 inference on a fixed random input, after a warm-up."""
    x = np.random.default_rng(0).standard_normal(engine.input_shape(), dtype=np.float32)
    return time_calls(engine.infer, [x], runs, warmup)


def load_engine(model: str | Path, engine: str = "auto", threads: int = 0) -> Engine:
    """Load `model` (.onnx or .pt) on the named engine, or on the fastest one for `auto`.

    `threads` = 0 leaves the runtime's default (all cores). Any problem with the file is a
    LaneSegError with one line that says what was wrong.
    """
    path = Path(model)
    if threads < 0:
        raise LaneSegError(f"threads must be >= 0 (0 = runtime default), got {threads}")
    _check_file(path)
    if path.suffix not in (".onnx", ".pt"):
        raise LaneSegError(f"model must be an .onnx or .pt file, got {path.name}")
    if engine != "auto":
        return _make(path, engine, threads)
    best: Engine | None = None
    timings: dict[str, float] = {}
    for name in candidate_engines(path):
        try:
            eng = _make(path, name, threads)
        except LaneSegError:
            if name == baseline_engine(path):
                raise  # the baseline engine failing means the file itself is bad
            continue  # an optional engine that cannot run this file here
        timings[name] = statistics.median(time_engine(eng))
        if best is None or timings[name] < timings[best.name]:
            best = eng
    assert best is not None  # the baseline engine raised otherwise
    best.auto_timings = timings
    return best
