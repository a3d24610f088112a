"""The repository is a valid ROS 2 ament_python package that colcon builds and installs."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_package_xml_declares_ament_python_and_run_dependencies():
    root = ET.parse(REPO / "package.xml").getroot()  # noqa: S314 (our own file)
    assert root.get("format") == "3"
    assert root.findtext("name") == "lane_seg"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    assert {
        "rclpy",
        "sensor_msgs",
        "std_msgs",
        "nav_msgs",
        "diagnostic_msgs",
        "cv_bridge",
        "python3-opencv",
        "python3-numpy",
    } <= deps


def test_workspace_source_points_at_this_package():
    assert (REPO / "ros2_ws" / "src" / "lane_seg").resolve() == REPO


def test_colcon_build_installs_package(tmp_path):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    if colcon is None:
        pytest.skip("colcon is not installed (pip install colcon-core colcon-ros)")
    install = tmp_path / "install"
    subprocess.run(
        [colcon, "build", "--build-base", str(tmp_path / "build"), "--install-base", str(install)],
        cwd=REPO / "ros2_ws",
        check=True,
        capture_output=True,
    )
    pkg = install / "lane_seg"
    assert (pkg / "share/ament_index/resource_index/packages/lane_seg").is_file()
    assert (pkg / "share/lane_seg/package.xml").is_file()
    for f in (
        "config/sim.yaml",
        "config/seg.yaml",
        "config/controller.yaml",
        "launch/seg.launch.py",
        "models/lane_unet_int8.onnx",  # the node's default model, found via the ament index
        "models/lane_unet_fp32.onnx",
    ):
        assert (pkg / "share/lane_seg" / f).is_file(), f
    for exe in ("lane-seg", "seg_node", "lane_controller"):  # where `ros2 run lane_seg` looks
        assert (pkg / "lib/lane_seg" / exe).is_file(), exe
    site = next((pkg / "lib").glob("python3*/site-packages"))
    assert (site / "lane_seg/sim/world/render.py").is_file()
    assert (site / "lane_seg/training/__init__.py").is_file()
    assert not (site / "sim").exists() and not (site / "training").exists()
