"""The package's node executables: `ros2 run lane_seg seg_node` and `... lane_controller`
(console scripts from setup.py; `lane-seg node` runs the first).

Shutdown (docs/architecture.md, contract 3): SIGINT and SIGTERM end a node cleanly, exit code 0,
no traceback, after its last words (`CheckedNode.shut_down`: the seg node's final
/diagnostics). Ctrl-C under `ros2 launch` delivers SIGINT twice, the terminal's and then
launch's own, so the handlers here only set an event and stay installed through the cleanup
(`stop_on_signals`). rclpy's own handlers are not installed: they shut the context down at
once, before anything could still be published. rclpy's wait does not return to Python for a
signal, so the executor spins in a thread of its own and the main thread, where Python runs
signal handlers, waits.

Neither `ros2 run` nor `ros2 launch` passes a SIGTERM on to the node it starts: ros2run's
`run_executable` waits on the node and handles only KeyboardInterrupt, and launch on SIGTERM
only cancels itself ("can result in orphaned processes"); either dies and would leave the node
running. So a node whose parent is `ros2 run` or `ros2 launch` asks Linux for a SIGTERM when
that parent ends (`follow_ros2_parent`, prctl PR_SET_PDEATHSIG) and stops cleanly with it
(README, "The node").
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from lane_seg.errors import LaneSegError
from lane_seg.ros.lane_controller import NODE_NAME as CONTROLLER
from lane_seg.ros.lane_controller import LaneControllerNode
from lane_seg.ros.params import CheckedNode
from lane_seg.ros.seg_node import NODE_NAME as SEGMENTATION
from lane_seg.ros.seg_node import SegNode


@contextmanager
def _stderr_kept_if_ok() -> Iterator[None]:
    """Hold back what C code writes to stderr in the block; pass it on only if no exception.
    For single-threaded start-up code only: stderr is the process's file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        sys.stderr.buffer.write(held.read())  # reached only without an exception
        sys.stderr.flush()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SIGNAL_CHECK_S = 0.1  # how soon a signal is acted on at worst


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """In the block, SIGINT and SIGTERM set `stop` (main thread only: Python's rule); a second
    one during the cleanup is harmless. After it, a process that a signal stopped ignores them:
    it is on its way out, and Python's finalization puts back the default handlers, which would
    kill it (exit code -2) or raise KeyboardInterrupt. Otherwise the handlers before are back
    (a node run inside another program, as the tests do)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signalled = threading.Event()

    def handler(*_: object) -> None:
        signalled.set()
        stop.set()

    before = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in before.items():
            old = signal.SIG_DFL if old is None else old  # None: not set from Python
            signal.signal(sig, signal.SIG_IGN if signalled.is_set() else old)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


ROS2_STARTERS = ("run", "launch")  # the ros2 verbs that start nodes as their children


def started_by_ros2(pid: int) -> bool:
    """Process `pid` is `ros2 run` or `ros2 launch` (its command line: .../ros2 run ...)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:  # not Linux, or gone
        return False
    names = [os.path.basename(a.decode(errors="replace")) for a in argv]
    verbs = (names[i + 1] for i, n in enumerate(names[:-1]) if n == "ros2")
    return any(verb in ROS2_STARTERS for verb in verbs)


def follow_ros2_parent(stop: threading.Event) -> bool:
    """Under `ros2 run` or `ros2 launch` on Linux: a SIGTERM to this process when that parent
    ends (the module docstring); `stop` set at once if it already has. Whether it was asked
    for."""
    parent = os.getppid()
    if threading.current_thread() is not threading.main_thread():  # no handler: stop_on_signals
        return False
    if not sys.platform.startswith("linux") or not started_by_ros2(parent):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # it ended before the request was made
        stop.set()
    return True


def spin_until(node: CheckedNode, stop: threading.Event) -> None:
    """Spin `node` in a thread until `stop` is set (a signal) or the spin ends (the context shut
    down elsewhere, or a callback raised: re-raised here); then stop the executor and let the
    node say its last words while its context is still up."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    failed: list[BaseException] = []

    def spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass
        except BaseException as exc:  # handed to the main thread
            failed.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=spin, name="ros_spin", daemon=True)
    thread.start()
    # With a timeout: a signal that lands on another thread (DDS's, onnxruntime's) only flags
    # it, and the main thread runs the Python handler when it next runs Python code.
    while not stop.wait(SIGNAL_CHECK_S):
        pass
    executor.shutdown()  # waits for the callback in progress, wakes the spin
    thread.join()
    if failed:
        raise failed[0]
    if rclpy.ok():
        node.shut_down()


def run_node(make_node: Callable[[], CheckedNode], name: str, args: list[str] | None = None) -> int:
    """Init, spin until SIGINT, SIGTERM or shutdown, and exit 0 (the module docstring);
    start-up problems (bad --ros-args, LaneSegError) become one line on stderr and exit 2."""
    stop = threading.Event()
    with stop_on_signals(stop):  # before the model loads: a signal during start-up stops it too
        follow_ros2_parent(stop)
        try:
            with _stderr_kept_if_ok():  # rcl also logs its own "Failed to parse" line
                rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        except Exception as exc:  # rclpy's RCLError for malformed --ros-args
            reason = str(exc).splitlines()[0].split(", at /")[0]
            print(f"{name}: error: bad ROS arguments: {reason}", file=sys.stderr)
            return 2
        node = None
        try:
            node = make_node()
            spin_until(node, stop)
        except LaneSegError as exc:
            print(f"{name}: error: {exc}", file=sys.stderr)
            return 2
        finally:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
    return 0


def seg_node(args: list[str] | None = None) -> int:
    """`seg_node`: camera frames in, lane masks and the lane centre out."""
    return run_node(SegNode, SEGMENTATION, args)


def lane_controller(args: list[str] | None = None) -> int:
    """`lane_controller`: lane centre in, speed and yaw rate out."""
    return run_node(LaneControllerNode, CONTROLLER, args)
