"""Lockstep with a CARLA server: frame pairing, synchronous mode, actor cleanup.

These pieces take the CARLA objects they act on as arguments and never import `carla`, so
their guarantees (pairing by frame id, settings restored and actors destroyed on every exit
path) are tested without a server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


class FramePairer:
    """Collects sensor callbacks and hands out one item per sensor for a given frame id.

    Sensor callbacks run on CARLA's client threads and may arrive in any order, late, or for
    frames nobody asked for. Items are matched by the frame id the sensor stamped on them,
    never by arrival order; anything older than the frame asked for is discarded.
    """

    def __init__(self, sensors: list[str]):
        self.sensors = list(sensors)
        self._items: dict[str, dict[int, Any]] = {s: {} for s in self.sensors}
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, sensor: str, frame: int, item: Any) -> None:
        with self._cond:
            self._items[sensor][int(frame)] = item
            self._cond.notify_all()

    def callback(self, sensor: str) -> Callable[[Any], None]:
        """A `sensor.listen` callback storing each measurement under its `frame` id."""
        return lambda data: self.put(sensor, data.frame, data)

    def _discard_before(self, frame: int) -> None:
        for items in self._items.values():
            for old in [f for f in items if f < frame]:
                del items[old]
                self.dropped += 1

    def discard_through(self, frame: int) -> None:
        """Forget everything up to and including `frame` (ticks that are not recorded)."""
        with self._cond:
            self._discard_before(frame + 1)

    def wait(self, frame: int, timeout: float) -> dict[str, Any]:
        """{sensor: item} for exactly `frame`; TimeoutError naming the sensors still missing."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                missing = [s for s in self.sensors if frame not in self._items[s]]
                if not missing:
                    out = {s: self._items[s].pop(frame) for s in self.sensors}
                    self._discard_before(frame)
                    return out
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no data for frame {frame} from {', '.join(missing)} after {timeout:g} s"
                    )
                self._cond.wait(left)


@contextmanager
def synchronous(world: Any, traffic_manager: Any, delta_seconds: float) -> Iterator[Any]:
    """Run the body with the world in synchronous mode at a fixed time step.

    The settings the server had before are put back on every exit path (normal end,
    exception, Ctrl-C), and the Traffic Manager follows. If the server is gone by then the
    restore cannot happen; that is logged and the original exception, if any, is kept.
    """
    original = world.get_settings()
    settings = world.get_settings()
    settings.synchronous_mode = True
    settings.fixed_delta_seconds = delta_seconds
    world.apply_settings(settings)
    if traffic_manager is not None:
        traffic_manager.set_synchronous_mode(True)
    try:
        yield world
    finally:
        try:
            if traffic_manager is not None:
                traffic_manager.set_synchronous_mode(bool(original.synchronous_mode))
            world.apply_settings(original)
        except RuntimeError as exc:  # the server went away
            log.warning("could not restore the CARLA world settings: %s", exc)


class ActorPool:
    """Every actor spawned through it is destroyed on exit, sensors stopped first.

    Destruction runs in reverse spawn order (sensors before the vehicle they are attached to)
    and goes on past individual failures, so one dead actor never leaks the others.
    """

    def __init__(self) -> None:
        self.actors: list[Any] = []

    def spawn(self, world: Any, blueprint: Any, transform: Any, attach_to: Any = None) -> Any:
        actor = (
            world.spawn_actor(blueprint, transform, attach_to=attach_to)
            if attach_to is not None
            else world.spawn_actor(blueprint, transform)
        )
        self.actors.append(actor)
        return actor

    def try_spawn(self, world: Any, blueprint: Any, transform: Any) -> Any | None:
        actor = world.try_spawn_actor(blueprint, transform)
        if actor is not None:
            self.actors.append(actor)
        return actor

    def destroy_all(self) -> int:
        """Destroy everything; returns how many actors could not be destroyed.

        A RuntimeError from the client means the server no longer answers (a time-out): the
        remaining actors went with it, and trying each would only wait out one time-out apiece.
        """
        while self.actors:
            actor = self.actors.pop()
            try:
                if hasattr(actor, "listen"):  # a sensor: no callbacks into a dying actor
                    actor.stop()
                actor.destroy()
            except RuntimeError as exc:
                left = len(self.actors) + 1
                log.warning("CARLA server gone while destroying actors (%d left): %s", left, exc)
                self.actors.clear()
                return left
        return 0

    def __enter__(self) -> ActorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy_all()
