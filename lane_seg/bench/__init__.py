"""Benchmarks: `lane-seg bench` (every engine, one run) and the node over real ROS 2."""

# The rows `lane-seg bench --engines` chooses from (lane_seg.bench.contenders builds them); GPU rows
# are skipped, each with its reason, where the machine or the installed wheels cannot run them.
CPU_ENGINES = ("torch-fp32", "torch-int8", "ort-fp32", "ort-int8", "ov-fp32", "ov-int8")
GPU_ENGINES = (
    "torch-cuda-fp32",
    "torch-cuda-fp16",
    "ort-cuda-fp32",
    "ort-cuda-int8",
    "ort-trt-int8",
)
ENGINE_KEYS = CPU_ENGINES + GPU_ENGINES
