"""Small models and inputs for tests and examples (needs the `[train]` extra: torch, onnx).

`write_tiny_onnx` exports a real (tiny) torch conv net with the model artifact's I/O names and
metadata, so runtime tests exercise the same code path as a trained model:

- kind="random": a randomly initialised 3x3 conv net, for shapes, parity and speed.
- kind="bright": a 1x1 conv whose logit is positive exactly where the pixel's mean intensity is
  above half scale (it undoes the model's mean/std), so tests can predict the mask.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from lane_seg.artifact import INPUT_NAME, OUTPUT_NAME, ModelInfo
from lane_seg.camera import Camera
from lane_seg.preprocess import PreprocessConfig

TINY_ARCH = "tiny_test_net"
BRIGHT_GAIN = 40.0  # logit per unit of (mean intensity / 255 - 0.5)


def tiny_info(height: int = 64, width: int = 128, **kw) -> ModelInfo:
    """ModelInfo for a test model; keyword arguments override PreprocessConfig fields."""
    pre = PreprocessConfig(height=height, width=width, **kw)
    return ModelInfo(arch=TINY_ARCH, model_config={"test": True}, preprocess=pre)


def tiny_torch_model(kind: str, info: ModelInfo, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    if kind == "random":
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 1, 1),
        ).eval()
    if kind != "bright":
        raise ValueError(f"kind must be 'random' or 'bright', got {kind!r}")
    pre = info.preprocess
    conv = torch.nn.Conv2d(3, 1, 1)
    std = torch.tensor(pre.std, dtype=torch.float32)
    mean = torch.tensor(pre.mean, dtype=torch.float32)
    if pre.color_order == "bgr":  # the model sees channels in BGR order
        std, mean = std.flip(0), mean.flip(0)
    with torch.no_grad():
        # x_c = (v_c - m_c) / s_c  =>  v_c = x_c * s_c + m_c ; logit = g * (mean_c v_c - 0.5)
        conv.weight.copy_((BRIGHT_GAIN * std / 3.0).view(1, 3, 1, 1))
        conv.bias.fill_(float(BRIGHT_GAIN * (mean.mean() - 0.5)))
    return torch.nn.Sequential(conv).eval()


def export_onnx_bytes(model, info: ModelInfo) -> bytes:
    import torch

    pre = info.preprocess
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            torch.zeros(1, 3, pre.height, pre.width),
            buf,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return buf.getvalue()


def write_onnx_with_metadata(data: bytes, meta: dict[str, str], path: str | Path) -> Path:
    import onnx

    proto = onnx.load_from_string(data)
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def write_tiny_onnx(
    path: str | Path, kind: str = "random", info: ModelInfo | None = None, seed: int = 0
) -> Path:
    """Export a tiny conv net to `path` with lane_seg metadata; returns the path."""
    info = info or tiny_info()
    model = tiny_torch_model(kind, info, seed)
    return write_onnx_with_metadata(export_onnx_bytes(model, info), info.to_metadata(), path)


def stripes_rgb(height: int, width: int, period: int = 32, seed: int = 0) -> np.ndarray:
    """A dark noisy frame with bright vertical stripes: what the "bright" model calls lane."""
    rng = np.random.default_rng(seed)
    img = rng.integers(10, 60, size=(height, width, 3), dtype=np.uint8)
    cols = (np.arange(width) % period) < period // 2
    img[:, cols] = rng.integers(200, 250, size=(height, int(cols.sum()), 3), dtype=np.uint8)
    return img


def road_rgb(
    camera: Camera, offsets: tuple[float, ...] = (1.75, -1.75), width_m: float = 0.15, seed: int = 0
) -> np.ndarray:
    """A dark noisy road seen by `camera` with bright straight lane lines `offsets` metres left
    of it, out to 80 m (never thinner than 2 px): lane lines the "bright" model finds."""
    import cv2

    rng = np.random.default_rng(seed)
    img = rng.integers(10, 60, size=(camera.height, camera.width, 3), dtype=np.uint8)
    xs = np.geomspace(1.0, 80.0, 300)
    for y in offsets:
        uv, depth = camera.project(np.column_stack([xs, np.full_like(xs, y), np.zeros_like(xs)]))
        for k in np.flatnonzero((depth[:-1] > 0) & (depth[1:] > 0)):
            thick = max(2, round(width_m * camera.fx / xs[k]))
            a, b = (tuple(int(v) for v in np.rint(p * 16)) for p in (uv[k], uv[k + 1]))
            cv2.line(img, a, b, (235, 235, 235), thick, cv2.LINE_8, 4)
    return img


def bad_image_fields(rng: np.random.Generator, max_pixels: int = 4096 * 4096) -> dict:
    """Field values of one malformed sensor_msgs/Image, of a randomly chosen kind.

    Every kind is something `lane_seg.ros_image.image_to_rgb` must refuse: unknown encoding,
    step shorter than a row, truncated or oversized data, zero size, size above `max_pixels`.
    """
    h, w = int(rng.integers(1, 48)), int(rng.integers(1, 48))
    enc = str(rng.choice(["rgb8", "bgr8", "rgba8", "bgra8", "mono8"]))
    ch = {"mono8": 1, "rgb8": 3, "bgr8": 3}.get(enc, 4)
    step = w * ch
    data = rng.integers(0, 256, size=step * h, dtype=np.uint8).tobytes()
    kind = int(rng.integers(0, 7))
    if kind == 0:
        enc = str(rng.choice(["16UC1", "yuv422", "bayer_rggb8", "RGB8", "", "32FC1", "nv12"]))
    elif kind == 1:
        step = int(rng.integers(0, step))  # shorter than one row
    elif kind == 2:
        data = data[: int(rng.integers(0, len(data)))]  # truncated
    elif kind == 3:
        data = data + b"\0" * int(rng.integers(1, 64))  # more bytes than step * height
    elif kind == 4:
        h, w, step, data = (0, w, step, b"") if rng.integers(0, 2) else (h, 0, 0, b"")
    elif kind == 5:  # huge declared size, no matching data
        h, w = max_pixels // 1000 + 1, 1000
        step = w * ch
    else:  # huge size whose data is also missing, plus an off-by-one step
        step = w * ch + 1
        data = data[:-1] if data else data
    return {"height": h, "width": w, "encoding": enc, "is_bigendian": 0, "step": step, "data": data}


def bad_compressed_fields(rng: np.random.Generator) -> dict:
    """Field values of one malformed sensor_msgs/CompressedImage (undecodable or unsupported)."""
    img = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    import cv2

    jpeg = cv2.imencode(".jpg", img)[1].tobytes()
    png = cv2.imencode(".png", img)[1].tobytes()
    kind = int(rng.integers(0, 6))
    fmt = "jpeg"
    if kind == 0:
        data = rng.integers(0, 256, size=int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
    elif kind == 1:
        data = jpeg[: int(rng.integers(2, len(jpeg) - 2))]  # truncated JPEG
    elif kind == 2:
        fmt, data = "png", png[: int(rng.integers(8, len(png) - 12))]  # truncated PNG
    elif kind == 3:
        data = b""
    elif kind == 4:
        fmt, data = str(rng.choice(["tiff", "bmp", "h264"])), jpeg
    else:  # a valid-looking JPEG header that claims 65535x65535 pixels
        sof = b"\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
        data = b"\xff\xd8" + sof + b"\xff\xd9"
    return {"format": fmt, "data": data}


def write_image_bag(
    path: str | Path,
    frames_rgb: list[np.ndarray],
    topic: str = "/camera/image_raw",
    storage: str = "mcap",
    encoding: str = "bgr8",
    start_ns: int = 1_700_000_000_000_000_000,
    period_ns: int = 50_000_000,
    frame_id: str = "camera_optical",
    camera: Camera | None = None,
) -> Path:
    """A rosbag2 with `frames_rgb` on `topic` (Image in `encoding`, or CompressedImage when
    encoding is "jpeg"/"png") plus a std_msgs/String chatter topic to test copy-through, and
    with `camera` its CameraInfo before each frame on the topic beside (<dir>/camera_info)."""
    import cv2
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    compressed = encoding in ("jpeg", "png")
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    with Writer(Path(path), version=8, storage_plugin=plugin) as w:
        img_conn = w.add_connection(topic, msgtype, typestore=ts)
        txt_conn = w.add_connection("/chatter", "std_msgs/msg/String", typestore=ts)
        info = "sensor_msgs/msg/CameraInfo"
        info_conn = None
        if camera is not None:
            info_topic = f"{topic.removesuffix('/compressed').rsplit('/', 1)[0]}/camera_info"
            info_conn = w.add_connection(info_topic, info, typestore=ts)
        for i, rgb in enumerate(frames_rgb):
            t = start_ns + i * period_ns
            stamp = T["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9)
            header = T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)
            if compressed:
                ext = ".png" if encoding == "png" else ".jpg"
                buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].reshape(-1)
                msg = T[msgtype](header=header, format=encoding, data=buf)
            else:
                px = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if encoding == "bgr8" else rgb
                h, wd = rgb.shape[:2]
                msg = T[msgtype](
                    header=header, height=h, width=wd, encoding=encoding, is_bigendian=0,
                    step=wd * 3, data=np.ascontiguousarray(px).reshape(-1),
                )  # fmt: skip
            if info_conn is not None:
                roi = T["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False)
                eye = np.eye(3).ravel()
                p = np.column_stack([camera.K, np.zeros(3)]).ravel()
                m = T[info](
                    header, camera.height, camera.width, "plumb_bob", np.zeros(5),
                    camera.K.ravel(), eye, p, 0, 0, roi,
                )  # fmt: skip
                w.write(info_conn, t + 500, ts.serialize_cdr(m, info))
            w.write(img_conn, t + 1000, ts.serialize_cdr(msg, msgtype))  # received after stamp
            text = T["std_msgs/msg/String"](data=f"frame {i}")
            w.write(txt_conn, t + 2000, ts.serialize_cdr(text, "std_msgs/msg/String"))
    return Path(path)
