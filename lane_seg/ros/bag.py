"""rosbag2 replay: segment every frame of an image topic offline and write a new bag.

Reads mcap and sqlite3 bags with `rosbags` (pure Python, no ROS install). Every message of the
image topic is segmented (nothing is dropped offline); the mask (and optionally the overlay) is
written with the original receive timestamp and the input header copied verbatim, on the same
topics a live node publishes (`/seg_node/mask`, `/seg_node/overlay` by default). All other
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
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lane_seg.errors import LaneSegError
from lane_seg.outputs import output_dir
from lane_seg.ros.image_codec import (
    BadImage,
    bgr8_fields,
    message_to_rgb,
    mono8_fields,
    quiet_opencv,
)
from lane_seg.runtime.segmenter import Segmenter, overlay_bgr

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
STORAGES = ("mcap", "sqlite3")
DEFAULT_MASK_TOPIC = "/seg_node/mask"
DEFAULT_OVERLAY_TOPIC = "/seg_node/overlay"


@dataclass
class BagReport:
    frames: int = 0  # image messages seen on the topic
    masks: int = 0  # masks written
    copied: int = 0  # messages copied through (all topics)
    seconds: float = 0.0
    bad: list[str] = field(default_factory=list)  # "t=<ns>: reason"
    output: Path | None = None

    def summary(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.frames} frames -> {self.masks} masks ({fps:.1f} frames/s), "
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
    try:
        reader = Reader(path)
        reader.open()
    except FileNotFoundError:
        raise LaneSegError(f"{path} is not a rosbag2 folder: it has no metadata.yaml") from None
    except ReaderError as exc:
        raise LaneSegError(f"cannot read bag {path}: {exc}") from exc
    except Exception as exc:  # yaml, sqlite, mcap errors in malformed bags
        raise LaneSegError(f"cannot read bag {path}: {type(exc).__name__}: {exc}") from exc
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
    output_dir(Path(dst).parent)


def _image_connections(reader, src: Path, topic: str) -> list:
    """The bag's connections of image `topic`, or a LaneSegError naming the image topics."""
    conns = [c for c in reader.connections if c.topic == topic]
    if not conns:
        images = sorted({c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES})
        raise LaneSegError(
            f"topic {topic} is not in {src}; image topics there: "
            f"{', '.join(images) if images else 'none'}"
        )
    bad_types = sorted({c.msgtype for c in conns if c.msgtype not in IMAGE_TYPES})
    if bad_types:
        raise LaneSegError(f"topic {topic} has type {bad_types[0]}, not an image type")
    return conns


def replay(
    seg: Segmenter,
    src: str | Path,
    dst: str | Path,
    topic: str,
    *,
    storage: str | None = None,
    mask_topic: str = DEFAULT_MASK_TOPIC,
    overlay_topic: str | None = None,
    progress: bool = True,
) -> BagReport:
    """Segment every message on `topic` of bag `src` into a new bag `dst` (see module doc)."""
    src, dst = Path(src), Path(dst)
    check_paths(src, dst, storage)
    quiet_opencv()
    reader = _open_reader(src)
    try:
        _image_connections(reader, src, topic)
        taken = {c.topic for c in reader.connections}
        for out_topic in (mask_topic, overlay_topic):
            if out_topic and out_topic in taken:
                raise LaneSegError(
                    f"{src} already has topic {out_topic}; pick another with --mask-topic/"
                    "--overlay-topic"
                )
        storage = storage or _storage_of(src)
        partial = dst.with_name(dst.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)  # left by an interrupted run of ours
        report = _replay(seg, reader, partial, storage, topic, mask_topic, overlay_topic, progress)
    finally:
        reader.close()
    partial.rename(dst)
    report.output = dst
    return report


def _replay(seg, reader, partial, storage, topic, mask_topic, overlay_topic, progress):
    from rosbags.rosbag2 import ReaderError

    typestore = _typestore()
    report = BagReport()
    writer = _writer(partial, storage)
    try:
        out = {c.id: _copy_connection(writer, c, typestore) for c in reader.connections}
        mask_conn = writer.add_connection(mask_topic, "sensor_msgs/msg/Image", typestore=typestore)
        over_conn = (
            writer.add_connection(overlay_topic, "sensor_msgs/msg/Image", typestore=typestore)
            if overlay_topic
            else None
        )
        t0 = time.perf_counter()
        bar = tqdm(total=reader.message_count, unit="msg", desc="bag", disable=not progress)
        try:
            for conn, stamp, raw in reader.messages():
                writer.write(out[conn.id], stamp, raw)
                report.copied += 1
                bar.update(1)
                if conn.topic != topic:
                    continue
                report.frames += 1
                try:
                    msg = typestore.deserialize_cdr(raw, conn.msgtype)
                    rgb = message_to_rgb(msg)
                except (BadImage, ValueError, IndexError, AssertionError) as exc:
                    report.bad.append(f"t={stamp}: {exc}")
                    continue
                mask = seg.segment(rgb)
                m = _image_message(typestore, msg.header, mono8_fields(mask))
                writer.write(mask_conn, stamp, typestore.serialize_cdr(m, m.__msgtype__))
                report.masks += 1
                if over_conn is not None:
                    o = _image_message(typestore, msg.header, bgr8_fields(overlay_bgr(rgb, mask)))
                    writer.write(over_conn, stamp, typestore.serialize_cdr(o, o.__msgtype__))
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


def iter_images(src: str | Path, topic: str | None = None) -> Iterator[np.ndarray]:
    """RGB frames of an image topic of a bag (default: its first image topic), in bag order.
    Frames that cannot be decoded are skipped with a warning."""
    src = Path(src)
    reader = _open_reader(src)
    try:
        images = sorted(c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES)
        topic = topic or (images[0] if images else None)
        conns = [c for c in reader.connections if c.topic == topic and c.msgtype in IMAGE_TYPES]
        if not conns:
            raise LaneSegError(
                f"no image topic {topic or ''} in {src}; image topics there: "
                f"{', '.join(images) if images else 'none'}"
            )
        typestore = _typestore()
        for conn, stamp, raw in reader.messages(connections=conns):
            try:
                yield message_to_rgb(typestore.deserialize_cdr(raw, conn.msgtype))
            except (BadImage, ValueError, IndexError, AssertionError) as exc:
                warnings.warn(f"{src} t={stamp}: skipped a frame: {exc}", stacklevel=2)
    finally:
        reader.close()
