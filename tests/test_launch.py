"""`ros2 launch`, `ros2 run` and `ros2 topic` for real, on a colcon build of ros2_ws sourced as
the README says (colcon_ws.py; the ROS 2 launch system and command line come into .venv with
`make venv`), and both nodes' executables started directly. Frames in; masks, lane centres and
commands out; then Ctrl-C (SIGINT to the whole process group, as a terminal sends it, so a node
under ros2 launch gets launch's SIGINT too) or SIGTERM: every process exits 0 without a
traceback, after the segmentation node's last /diagnostics ("stopped: ...").
docs/architecture.md, contract 3."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

import node_process as np_  # noqa: E402
from colcon_ws import REPO, VENV_BIN, sourced, user_env  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from nav_msgs.msg import Path as PathMsg  # noqa: E402

from lane_seg.models.testing import stripes_rgb, write_tiny_onnx  # noqa: E402

pytestmark = pytest.mark.ros
KIT = REPO.parent / "shared" / "ros2_launch"
# The README's ROS section shows these (test_readme_shows_the_commands_run_here); the tests add
# only what keeps them quick: a pinned engine (auto times every engine first), no ros2 daemon
# left running after the test, a tiny model where the shipped one is not the point.
SEG_LAUNCH = "ros2 launch lane_seg seg.launch.py image_topic:=/camera/image_raw"
LANE_KEEPING = (
    "ros2 launch lane_seg lane_keeping.launch.py namespace:=front "
    "image_topic:=camera/image_raw camera_info_topic:=camera/camera_info"
)
# Quoted: a shell expands an unquoted ~/image to $HOME/image, and the remapping misses.
RUN = "ros2 run lane_seg seg_node --ros-args -r '~/image:=/camera/image_raw'"
ECHO = "ros2 topic echo /seg_node/lane_center --once"


@pytest.fixture(scope="module")
def install(colcon_install) -> Path:
    """The colcon install, where .venv has the launch system; else skipped, saying why."""
    if not KIT.is_dir():
        pytest.skip(f"no ROS 2 launch system to test: {KIT} is not beside the checkout")
    pytest.importorskip("launch_ros", reason="the launch system is not in .venv: make venv")
    return colcon_install


@pytest.fixture(scope="module")
def bright(tmp_path_factory) -> Path:
    return write_tiny_onnx(tmp_path_factory.mktemp("m") / "bright.onnx", "bright")


def assert_clean_exit(proc: subprocess.Popen, log: str, processes: int = 0) -> None:
    """Exit code 0, no traceback; under ros2 launch, each of its `processes` finished cleanly."""
    assert proc.returncode == 0, log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
    assert log.count("process has finished cleanly") == processes, log


def final_diagnostics(diagnostics: list, node: str) -> dict[str, str]:
    """The values of `node`'s last /diagnostics status, the one it publishes on its way out."""
    last = [
        s
        for d in diagnostics
        for s in d.status
        if s.name.startswith(f"{node}:") and s.message.startswith("stopped: ")
    ]
    assert last, f"no final /diagnostics from {node}"
    return {kv.key: kv.value for kv in last[-1].values}


def test_ros2_launch_seg_then_ctrl_c(install):
    """The shipped model on 1280x720 frames: a mask and a lane centre per frame, then Ctrl-C."""
    proc = np_.start(sourced(install, f"{SEG_LAUNCH} engine:=onnxruntime-cpu"), env=user_env())
    try:
        with np_.Client() as client:
            diagnostics = client.subscribe(DiagnosticArray, "/diagnostics")
            centres = client.subscribe(PathMsg, "/seg_node/lane_center")
            rgb = stripes_rgb(720, 1280)
            np_.segment_one_frame(client, "/seg_node", proc, rgb, "/camera/image_raw")
            client.spin_until(lambda: centres, "a lane centre", proc=proc)
            log = np_.stop(proc, group=True)
            client.spin_for(0.5)
    finally:
        np_.stop(proc, sig=signal.SIGKILL, group=True)
    assert_clean_exit(proc, log, processes=1)
    assert centres[0].header.frame_id == "base_link"
    assert int(final_diagnostics(diagnostics, "/seg_node")["processed"]) >= 1


def test_ros2_launch_lane_keeping_under_a_namespace_then_ctrl_c(install, bright):
    """Camera frames on /front/camera/... -> seg_node -> lane_controller -> /front/cmd_vel."""
    from geometry_msgs.msg import TwistStamped
    from sensor_msgs.msg import CameraInfo, Image

    from lane_seg.camera import Camera
    from lane_seg.ros.messages import camera_info_msg, header, image_msg
    from lane_seg.sim.world.collect import render_frame
    from lane_seg.sim.world.scene import SimConfig

    command = f"{LANE_KEEPING} model:={bright} engine:=onnxruntime-cpu"
    proc = np_.start(sourced(install, command), env=user_env())
    rgb, _, meta = render_frame(0, 2, SimConfig())
    hdr = header(77.5, "camera_optical")
    try:
        with np_.Client() as client:
            diagnostics = client.subscribe(DiagnosticArray, "/diagnostics")
            cmds = client.subscribe(TwistStamped, "/front/cmd_vel")
            image = client.publisher(Image, "/front/camera/image_raw")
            info = client.publisher(CameraInfo, "/front/camera/camera_info")
            client.spin_until(
                lambda: (
                    image.get_subscription_count()
                    and client.node.count_publishers("/front/cmd_vel")
                ),
                "both nodes on the ROS graph",
                timeout=60,
                proc=proc,
            )
            for _ in range(20):  # again until a command comes back (discovery may lag)
                info.publish(camera_info_msg(Camera(**meta["camera"]), hdr))
                image.publish(image_msg(rgb, "rgb8", hdr))
                try:
                    client.spin_until(lambda: cmds, "a command", timeout=1.5, proc=proc)
                    break
                except AssertionError:
                    continue
            assert cmds, "no command on /front/cmd_vel"
            log = np_.stop(proc, group=True)
            client.spin_for(0.5)
    finally:
        np_.stop(proc, sig=signal.SIGKILL, group=True)
    assert_clean_exit(proc, log, processes=2)
    assert cmds[0].header.stamp == hdr.stamp  # the command answers this very frame
    assert cmds[0].twist.linear.x > 0
    assert "/front/seg_node/lane_center -> /front/cmd_vel" in log
    assert int(final_diagnostics(diagnostics, "/front/seg_node")["processed"]) >= 1


def test_ros2_launch_passes_a_numeric_model_path_as_text(install):
    """model:=123 reaches the node as the path "123" (not the integer 123): it is not found."""
    proc = np_.start(sourced(install, f"{SEG_LAUNCH} model:=123"), env=user_env())
    log = proc.communicate(timeout=60)[0]
    assert "seg_node: error: model file not found: 123;" in log, log
    assert "exit code 2" in log and "Traceback" not in log, log


def test_ros2_run_and_ros2_topic_echo(install):
    """`ros2 run` starts the node from the install; `ros2 topic echo --once` prints one lane
    centre and exits 0; Ctrl-C ends ros2 run and the node with 0."""
    from sensor_msgs.msg import Image

    from lane_seg.ros.messages import header, image_msg

    proc = np_.start(sourced(install, f"{RUN} -p engine:=onnxruntime-cpu"), env=user_env())
    echo = None
    try:
        with np_.Client() as client:
            rgb = stripes_rgb(64, 128)
            np_.segment_one_frame(client, "/seg_node", proc, rgb, "/camera/image_raw")
            command = f"{ECHO} --no-daemon --spin-time 5"
            echo = np_.start(sourced(install, command), env=user_env())
            pub = client.publisher(Image, "/camera/image_raw")
            end = time.monotonic() + 30
            while echo.poll() is None and time.monotonic() < end:
                pub.publish(image_msg(rgb, "rgb8", header(3.5, "cam")))
                client.spin_for(0.2)
            echoed = np_.stop(echo)
            log = np_.stop(proc, group=True)
    finally:
        np_.stop(proc, sig=signal.SIGKILL, group=True)
        if echo is not None:
            np_.stop(echo, sig=signal.SIGKILL, group=True)
    assert echo.returncode == 0, echoed
    assert "frame_id: base_link" in echoed and "sec: 3" in echoed, echoed
    assert_clean_exit(proc, log)


@pytest.mark.parametrize("command", ["seg_node", "lane-seg node"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_node_started_directly_stops_cleanly(bright, command, sig):
    """SIGINT comes again and again (Ctrl-C pressed repeatedly, or a terminal's and launch's
    together): none may interrupt the cleanup. The last /diagnostics has the final counts."""
    name = f"{command.replace(' ', '_').replace('-', '_')}_{sig.name.lower()}"
    if command == "seg_node":
        args = ["--ros-args", "-p", f"model:={bright}", "-p", "engine:=onnxruntime-cpu"]
        cmd = [str(VENV_BIN / "seg_node"), *args, "-r", f"__node:={name}"]
    else:
        args = ["node", "--model", str(bright), "--engine", "onnxruntime-cpu", "--name", name]
        cmd = [str(VENV_BIN / "lane-seg"), *args]
    proc = np_.start(cmd)
    try:
        with np_.Client() as client:
            diagnostics = client.subscribe(DiagnosticArray, "/diagnostics")
            np_.segment_one_frame(client, f"/{name}", proc, stripes_rgb(64, 128))
            again = 0.02 if sig == signal.SIGINT else None
            log = np_.stop(proc, sig=sig, again_every=again)
            client.spin_for(0.5)
    finally:
        np_.stop(proc, sig=signal.SIGKILL)
    assert_clean_exit(proc, log)
    assert final_diagnostics(diagnostics, f"/{name}")["processed"] == "1"


PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h: orphaned descendants become this process's


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    kids = []
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text() if d.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(d.name))
    return kids


def _exit_code(pid: int, timeout: float) -> int | None:
    """The exit code of child `pid` once it ends within `timeout` s; None if it does not."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    return None


@pytest.mark.parametrize("starter", ["run", "launch"])
def test_sigterm_to_ros2_run_or_launch_alone_stops_its_node_cleanly(install, bright, starter):
    """`kill PID` of `ros2 run` or `ros2 launch` (a supervisor's, a script's): neither passes
    SIGTERM on, and each dies of it, so the node asks Linux for SIGTERM when that parent ends
    (lane_seg.ros.entry_points.follow_ros2_parent) and stops as on its own SIGTERM: exit code
    0, its last /diagnostics, not left running. The test adopts the node when its parent is
    gone (a child subreaper), to read its exit code."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("no PR_SET_CHILD_SUBREAPER here")
    ns = f"{starter}_sigterm"
    if starter == "run":
        command = f"{RUN} -p model:={bright} -p engine:=onnxruntime-cpu -r __ns:=/{ns}"
    else:
        command = f"{SEG_LAUNCH} model:={bright} engine:=onnxruntime-cpu namespace:={ns}"
    proc = np_.start(sourced(install, command), env=user_env())
    node = []
    try:
        with np_.Client() as client:
            diagnostics = client.subscribe(DiagnosticArray, "/diagnostics")
            rgb = stripes_rgb(64, 128)
            np_.segment_one_frame(client, f"/{ns}/seg_node", proc, rgb, "/camera/image_raw")
            node = _children(proc.pid)
            assert len(node) == 1, node
            proc.send_signal(signal.SIGTERM)  # the starter alone, not its process group
            proc.wait(timeout=20)
            code = _exit_code(node[0], timeout=30)
            client.spin_for(0.5)
        log = proc.communicate(timeout=10)[0]
    finally:
        for pid in [proc.pid, *node]:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    assert code == 0, log
    assert "Traceback" not in log, log
    assert final_diagnostics(diagnostics, f"/{ns}/seg_node")["processed"] == "1"


def test_signal_handlers_are_given_back_unless_a_signal_stopped_the_node():
    """A node run inside another program (test_bad_input.py runs them in pytest) leaves its
    handlers as it found them; a process a signal stopped ignores the next ones to the end."""
    from lane_seg.ros.entry_points import STOP_SIGNALS, stop_on_signals

    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
        assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before
        assert not stop.is_set()
        with stop_on_signals(stop):
            os.kill(os.getpid(), signal.SIGTERM)
            end = time.monotonic() + 5
            while not stop.wait(0.05) and time.monotonic() < end:
                pass
        assert stop.is_set()
        assert all(signal.getsignal(s) is signal.SIG_IGN for s in STOP_SIGNALS)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


@pytest.mark.parametrize(
    ("executable", "bad_parameter", "error"),
    [
        ("seg_node", "model:=/nonexistent.onnx", "model file not found"),
        ("lane_controller", "lateral:=mpc", "lateral must be one of pure_pursuit, stanley"),
    ],
)
def test_executables_check_their_parameters(executable, bad_parameter, error):
    """Each executable the launch files start: a bad parameter stops it at start-up with one
    line and exit code 2."""
    r = subprocess.run(
        [str(VENV_BIN / executable), "--ros-args", "-p", bad_parameter],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{executable}: error: ") and error in lines[0]


def test_readme_shows_the_commands_run_here():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### The node") :]
    section = section[: section.index("\n### ", 1)]
    for command in ("colcon build", ". install/setup.sh", SEG_LAUNCH, LANE_KEEPING, RUN, ECHO):
        assert command in section, command
