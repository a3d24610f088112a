"""Quantization: torch.ao PTQ/QAT, int8 ONNX, low-bit study, calibration data, the report."""
