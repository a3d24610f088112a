"""rosbag2 replay: segment every frame of an image topic offline and write a new bag.

Reads mcap and sqlite3 bags with `rosbags` (pure Python, no ROS install). Every message of the
image topic is segmented (nothing is dropped offline); the mask (and optionally the overlay) is
written with the original receive timestamp and the input header copied verbatim, on the same
topics a live node publishes (`/seg_node/mask`, `/seg_node/overlay` by default). The lane lines
go out as the node's do (`lane_seg.ros.lane_lines`: a nav_msgs/Path per line on
`/seg_node/lanes`, a MarkerArray on `/seg_node/lanes/markers`), with the camera from the bag's
own CameraInfo next to the image topic (`camera_info_topic`) and the given mounting; before the
first CameraInfo, and in a bag without one, only the markers that clear go out. All other
topics, and the image topic itself, are copied through byte for byte.

The output is written to `OUT.partial` and renamed when complete, so an interrupted run never
leaves a half bag under the requested name. A frame that cannot be decoded is reported with its
reason and timestamp, and the replay goes on.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lane_seg.camera import Camera
from lane_seg.errors import LaneSegError
from lane_seg.lanes.geometry import camera_from_camera_info
from lane_seg.outputs import lock_file
from lane_seg.ros.image_codec import (
    BadImage,
    bgr8_fields,
    message_to_rgb,
    mono8_fields,
    quiet_opencv,
)
from lane_seg.ros.lane_lines import MARKER_WIDTH_M, LineGeometry, lines_in_camera
from lane_seg.runtime.segmenter import Segmenter, overlay_bgr
from lane_seg.settings import read_yaml

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
STORAGES = ("mcap", "sqlite3")
DEFAULT_MASK_TOPIC = "/seg_node/mask"
DEFAULT_OVERLAY_TOPIC = "/seg_node/overlay"
DEFAULT_LANES_TOPIC = "/seg_node/lanes"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"


@dataclass
class BagReport:
    frames: int = 0  # image messages seen on the topic
    masks: int = 0  # masks written
    lane_paths: int = 0  # lane lines written (one Path each)
    copied: int = 0  # messages copied through (all topics)
    seconds: float = 0.0
    bad: list[str] = field(default_factory=list)  # "t=<ns>: reason"
    output: Path | None = None

    def summary(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.frames} frames -> {self.masks} masks, {self.lane_paths} lane lines "
            f"({fps:.1f} frames/s), "
            f"{self.copied} messages copied through, {len(self.bad)} bad frames; "
            f"wrote {self.output}"
        )


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def _storage_of(path: Path) -> str:
    return "mcap" if any(p.suffix == ".mcap" for p in path.iterdir()) else "sqlite3"


def _open_reader(path: Path):
    from rosbags.rosbag2 import Reader, ReaderError

    if not path.exists():
        raise LaneSegError(f"bag not found: {path}")
    if not path.is_dir():
        raise LaneSegError(f"{path} is not a rosbag2 folder (it holds metadata.yaml and the data)")
    if (path / "metadata.yaml").is_file():  # its YAML errors in one line, not rosbags' eight
        try:
            read_yaml(path / "metadata.yaml", "its metadata")
        except LaneSegError as exc:
            raise LaneSegError(f"cannot read bag {path}: {exc}") from None
    try:
        reader = Reader(path)
        reader.open()
    except FileNotFoundError:
        raise LaneSegError(f"{path} is not a rosbag2 folder: it has no metadata.yaml") from None
    except ReaderError as exc:
        raise LaneSegError(f"cannot read bag {path}: {' '.join(str(exc).split())}") from exc
    except Exception as exc:  # yaml, sqlite, mcap errors in malformed bags
        text = " ".join(str(exc).split())  # one line
        raise LaneSegError(f"cannot read bag {path}: {type(exc).__name__}: {text}") from exc
    return reader


def _writer(path: Path, storage: str):
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=8, storage_plugin=plugin)
    writer.open()
    return writer


def _copy_connection(writer, conn, typestore) -> Any:
    """An output connection with the same topic, type, definition and QoS as `conn`."""
    kw: dict[str, Any] = {
        "serialization_format": conn.ext.serialization_format,
        "offered_qos_profiles": conn.ext.offered_qos_profiles,
    }
    if conn.msgtype in typestore.types:
        kw["typestore"] = typestore
    elif conn.msgdef is not None and conn.msgdef.data:
        kw["msgdef"], kw["rihs01"] = conn.msgdef.data, conn.digest
    return writer.add_connection(conn.topic, conn.msgtype, **kw)


def _image_message(typestore, header, fields: dict):
    image_cls = typestore.types["sensor_msgs/msg/Image"]
    return image_cls(header=header, **fields)


def camera_info_topic(image_topic: str) -> str:
    """Where a camera driver publishes the camera info of an image topic: beside it
    (/camera/image_raw and /camera/image_raw/compressed -> /camera/camera_info)."""
    base = image_topic.removesuffix("/compressed")
    return f"{base.rsplit('/', 1)[0]}/camera_info"


def _message(typestore, msgtype: str, **values):
    """A rosbags message of `msgtype` with `values`, every other field at its zero value."""
    from rosbags.interfaces import Nodetype

    def zero(kind, spec):
        if kind == Nodetype.NAME:
            return _message(typestore, spec)
        if kind == Nodetype.BASE:
            return {"string": "", "bool": False}.get(spec[0], 0)
        elem = spec[0]  # sequences and arrays
        if elem[0] == Nodetype.BASE and elem[1][0] not in ("string", "bool"):
            return np.zeros(spec[1] if kind == Nodetype.ARRAY else 0, elem[1][0])
        return [zero(*elem) for _ in range(spec[1] if kind == Nodetype.ARRAY else 0)]

    _, fields = typestore.fielddefs[msgtype]
    kw = {name: values[name] if name in values else zero(*f) for name, f in fields}
    return typestore.types[msgtype](**kw)


def _lane_messages(typestore, header, lines: list[LineGeometry]) -> tuple[list, Any]:
    """The node's ~/lanes Paths and ~/lanes/markers MarkerArray (lane_seg.ros.messages), as
    rosbags messages."""

    def point(p):
        return _message(typestore, "geometry_msgs/msg/Point", x=p[0], y=p[1], z=p[2])

    paths = []
    for line in lines:
        poses = [
            _message(
                typestore,
                "geometry_msgs/msg/PoseStamped",
                header=header,
                pose=_message(
                    typestore,
                    "geometry_msgs/msg/Pose",
                    position=point(p),
                    orientation=_message(
                        typestore, "geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]
                    ),
                ),
            )
            for p, q in zip(line.positions.tolist(), line.orientations.tolist(), strict=True)
        ]
        paths.append(_message(typestore, "nav_msgs/msg/Path", header=header, poses=poses))
    marker = "visualization_msgs/msg/Marker"
    consts = dict((name, value) for name, _, value in typestore.fielddefs[marker][0])
    markers = [_message(typestore, marker, header=header, action=consts["DELETEALL"])]
    for i, line in enumerate(lines):
        r, g, b, a = line.rgba
        markers.append(
            _message(
                typestore,
                marker,
                header=header,
                ns=line.marker_ns,
                id=i,
                type=consts["LINE_STRIP"],
                action=consts["ADD"],
                pose=_message(
                    typestore,
                    "geometry_msgs/msg/Pose",
                    orientation=_message(typestore, "geometry_msgs/msg/Quaternion", w=1.0),
                ),
                scale=_message(typestore, "geometry_msgs/msg/Vector3", x=MARKER_WIDTH_M),
                color=_message(typestore, "std_msgs/msg/ColorRGBA", r=r, g=g, b=b, a=a),
                points=[point(p) for p in line.positions.tolist()],
            )
        )
    array = _message(typestore, "visualization_msgs/msg/MarkerArray", markers=markers)
    return paths, array


def check_paths(src: Path, dst: Path, storage: str | None = None, topic: str = "") -> None:
    """The errors a user can fix before any model is loaded: `src` a readable bag (with `topic`
    an image topic in it, when given), `dst` a new folder in a folder that can be written."""
    if Path(dst).exists():
        raise LaneSegError(f"output {dst} already exists; remove it or choose another path")
    if storage is not None and storage not in STORAGES:
        raise LaneSegError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    reader = _open_reader(Path(src))
    try:
        if topic:
            _image_connections(reader, src, topic)
    finally:
        reader.close()
    lock_file(dst)  # its folder checked; this process's alone until the command returns


def _image_connections(reader, src: Path, topic: str | None) -> list:
    """The bag's connections of image `topic` (None: its first image topic), or a LaneSegError
    in one line: the bag has no image topic, the topic is not there, or it is no image. The
    one check of every command that reads a bag (`lane-seg bag`, `lane_seg.ros.recorded`)."""
    images = sorted({c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES})
    if topic is None and not images:
        topics = sorted({c.topic for c in reader.connections})
        raise LaneSegError(
            f"{src} has no image topic (sensor_msgs/msg/Image or CompressedImage); its topics: "
            f"{', '.join(topics) if topics else 'none'}"
        )
    topic = topic or images[0]
    conns = [c for c in reader.connections if c.topic == topic]
    if not conns:
        raise LaneSegError(
            f"topic {topic} is not in {src}; image topics there: "
            f"{', '.join(images) if images else 'none'}"
        )
    bad_types = sorted({c.msgtype for c in conns if c.msgtype not in IMAGE_TYPES})
    if bad_types:
        raise LaneSegError(f"topic {topic} has type {bad_types[0]}, not an image type")
    return conns


RATE_FRAMES = 30  # a topic's rate: from the receive times of its first frames


@dataclass(frozen=True)
class BagTopic:
    topic: str
    count: int  # its messages (the bag's metadata)
    fps: float  # the mean rate of its first RATE_FRAMES messages; 0 for fewer than two


def image_topic(src: str | Path, topic: str | None = None) -> BagTopic:
    """The image topic of bag `src` that `iter_images` will read (None: its first image
    topic), checked before any frame is read: a bag that does not open, has no image topic,
    lacks `topic` or has it as another type is one `LaneSegError` line."""
    from rosbags.rosbag2 import ReaderError

    reader = _open_reader(Path(src))
    try:
        conns = _image_connections(reader, Path(src), topic)
        stamps = [t for _, t, _ in islice(reader.messages(connections=conns), RATE_FRAMES)]
    except ReaderError as exc:
        raise LaneSegError(f"bag {src} is corrupt: {' '.join(str(exc).split())}") from exc
    finally:
        reader.close()
    span_ns = stamps[-1] - stamps[0] if stamps else 0
    fps = (len(stamps) - 1) * 1e9 / span_ns if span_ns > 0 else 0.0
    return BagTopic(conns[0].topic, sum(c.msgcount for c in conns), round(fps, 3))


def replay(
    seg: Segmenter,
    src: str | Path,
    dst: str | Path,
    topic: str,
    *,
    storage: str | None = None,
    mask_topic: str = DEFAULT_MASK_TOPIC,
    overlay_topic: str | None = None,
    lanes_topic: str | None = DEFAULT_LANES_TOPIC,
    mount: dict[str, float] | None = None,
    camera: Camera | None = None,
    progress: bool = True,
) -> BagReport:
    """Segment every message on `topic` of bag `src` into a new bag `dst` (see module doc).

    `lanes_topic`: where the lane lines go (None: none; markers on `<lanes_topic>/markers`);
    `mount`: the camera's mounting (Camera's height_m, pitch_deg, ... as the node's `camera.*`
    parameters; unset ones take the node's defaults) for the bag's CameraInfo; `camera`: the
    whole camera, used until the bag's first CameraInfo (the node's `camera.fx` > 0)."""
    src, dst = Path(src), Path(dst)
    check_paths(src, dst, storage)
    quiet_opencv()
    reader = _open_reader(src)
    try:
        _image_connections(reader, src, topic)
        taken = {c.topic for c in reader.connections}
        lane_topics = (lanes_topic, f"{lanes_topic}/markers") if lanes_topic else ()
        for out_topic in (mask_topic, overlay_topic, *lane_topics):
            if out_topic and out_topic in taken:
                raise LaneSegError(
                    f"{src} already has topic {out_topic}; pick another with --mask-topic/"
                    "--overlay-topic/--lanes-topic"
                )
        storage = storage or _storage_of(src)
        partial = dst.with_name(dst.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)  # left by an interrupted run of ours
        outputs = _Outputs(mask_topic, overlay_topic, lanes_topic, dict(mount or {}), camera)
        report = _replay(seg, reader, partial, storage, topic, outputs, progress)
    finally:
        reader.close()
    partial.rename(dst)
    report.output = dst
    return report


@dataclass
class _Outputs:
    mask_topic: str
    overlay_topic: str | None
    lanes_topic: str | None
    mount: dict[str, float]
    camera: Camera | None


def _replay(seg, reader, partial, storage, topic, outputs: _Outputs, progress):
    from rosbags.rosbag2 import ReaderError

    typestore = _typestore()
    report = BagReport()
    writer = _writer(partial, storage)
    try:
        out = {c.id: _copy_connection(writer, c, typestore) for c in reader.connections}

        def add(out_topic: str | None, msgtype: str):
            if not out_topic:
                return None
            return writer.add_connection(out_topic, msgtype, typestore=typestore)

        mask_conn = add(outputs.mask_topic, "sensor_msgs/msg/Image")
        over_conn = add(outputs.overlay_topic, "sensor_msgs/msg/Image")
        lanes_conn = add(outputs.lanes_topic, "nav_msgs/msg/Path")
        markers_conn = add(
            outputs.lanes_topic and f"{outputs.lanes_topic}/markers",
            "visualization_msgs/msg/MarkerArray",
        )
        info_topic = camera_info_topic(topic)
        camera = outputs.camera
        t0 = time.perf_counter()
        bar = tqdm(total=reader.message_count, unit="msg", desc="bag", disable=not progress)
        try:
            for conn, stamp, raw in reader.messages():
                writer.write(out[conn.id], stamp, raw)
                report.copied += 1
                bar.update(1)
                if conn.topic == info_topic and conn.msgtype == CAMERA_INFO_TYPE:
                    camera = _camera(typestore, conn, raw, outputs.mount) or camera
                if conn.topic != topic:
                    continue
                report.frames += 1
                try:
                    msg = typestore.deserialize_cdr(raw, conn.msgtype)
                    rgb = message_to_rgb(msg)
                except (BadImage, ValueError, IndexError, AssertionError) as exc:
                    report.bad.append(f"t={stamp}: {exc}")
                    continue
                if lanes_conn is not None:
                    mask, lanes = seg.segment_lanes(rgb, camera=camera)
                else:
                    mask, lanes = seg.segment(rgb), []
                written = [(mask_conn, _image_message(typestore, msg.header, mono8_fields(mask)))]
                if over_conn is not None:
                    over = overlay_bgr(rgb, mask, lanes=lanes)
                    written.append(
                        (over_conn, _image_message(typestore, msg.header, bgr8_fields(over)))
                    )
                if lanes_conn is not None:
                    lines = lines_in_camera(lanes, camera) if camera is not None else []
                    paths, markers = _lane_messages(typestore, msg.header, lines)
                    written += [(lanes_conn, p) for p in paths] + [(markers_conn, markers)]
                    report.lane_paths += len(paths)
                for out_conn, m in written:
                    writer.write(out_conn, stamp, typestore.serialize_cdr(m, m.__msgtype__))
                report.masks += 1
        finally:
            bar.close()
        report.seconds = time.perf_counter() - t0
    except ReaderError as exc:
        writer.close()
        shutil.rmtree(partial, ignore_errors=True)
        raise LaneSegError(f"bag {reader.path} is corrupt: {exc}") from exc
    except BaseException:
        writer.close()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    writer.close()
    return report


def _camera(typestore, conn, raw: bytes, mount: dict[str, float]) -> Camera | None:
    """The camera of a CameraInfo message with the given mounting; None for a bad one."""
    try:
        msg = typestore.deserialize_cdr(raw, conn.msgtype)
        return camera_from_camera_info(list(msg.k), msg.width, msg.height, **mount)
    except (ValueError, IndexError, AssertionError):
        return None


MOUNT = ("height_m", "pitch_deg", "yaw_deg", "roll_deg", "x_m", "y_m")
INTRINSICS = ("fx", "fy", "cx", "cy", "width", "height")


def camera_params(path: str) -> tuple[dict[str, float], Camera | None]:
    """The mounting and (with fx > 0) the whole camera of a seg_node parameter file."""
    values = read_yaml(path, "node parameter file").get("camera") or {}
    if not isinstance(values, dict) or set(values) - set(MOUNT + INTRINSICS):
        raise LaneSegError(f"{path}: camera takes only {', '.join(MOUNT + INTRINSICS)}")
    try:
        mount = {k: float(values[k]) for k in MOUNT if k in values}
        if float(values.get("fx", 0.0)) <= 0.0:
            return mount, None
        intr = [values[k] for k in INTRINSICS]
        return mount, Camera(int(intr[4]), int(intr[5]), *map(float, intr[:4]), **mount)
    except (KeyError, TypeError, ValueError) as exc:
        raise LaneSegError(f"{path}: bad camera parameters ({exc})") from None


def iter_images(src: str | Path, topic: str | None = None) -> Iterator[np.ndarray]:
    """RGB frames of an image topic of a bag (default: its first image topic), in bag order
    (`image_topic` checks the topic first, before a command starts its work). Frames that
    cannot be decoded are skipped with a warning; a damaged bag ends it in one line."""
    from rosbags.rosbag2 import ReaderError

    src = Path(src)
    reader = _open_reader(src)
    try:
        conns = _image_connections(reader, src, topic)
        typestore = _typestore()
        for conn, stamp, raw in reader.messages(connections=conns):
            try:
                yield message_to_rgb(typestore.deserialize_cdr(raw, conn.msgtype))
            except (BadImage, ValueError, IndexError, AssertionError) as exc:
                warnings.warn(f"{src} t={stamp}: skipped a frame: {exc}", stacklevel=2)
    except ReaderError as exc:
        raise LaneSegError(f"bag {src} is corrupt: {' '.join(str(exc).split())}") from exc
    finally:
        reader.close()
