"""Adapting a trained model to one camera from that camera's own unlabelled frames
(`lane-seg adapt`): `batchnorm` (AdaBN), `figures` (what can be measured without labels),
`run` (frames in, an adapted fp32 + int8 ONNX pair and its card out, resumable)."""
