"""The repository is a valid ROS 2 ament_python package (colcon builds it: test_install.py)."""

import xml.etree.ElementTree as ET
from pathlib import Path

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
