"""The repository is a valid ROS 2 ament_python package (colcon builds it: test_install.py)
whose package.xml declares exactly what the code imports."""

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = ("lane_seg", "sim", "training", "launch")
# Imports that come from ROS packages (rosdep keys of the same name), and the rosdep keys of
# the Python libraries the installed package needs.
ROS_PACKAGES = {
    "rclpy", "rcl_interfaces", "ament_index_python", "sensor_msgs", "std_msgs", "nav_msgs",
    "geometry_msgs", "diagnostic_msgs", "builtin_interfaces", "cv_bridge", "launch",
    "launch_ros", "image_transport", "tf2_ros", "message_filters", "visualization_msgs",
}  # fmt: skip
PYTHON_KEYS = {"cv2": "python3-opencv", "numpy": "python3-numpy", "yaml": "python3-yaml"}
PYTHON_KEYS |= {"tqdm": "python3-tqdm"}


def _imported_top_level_names() -> set[str]:
    names = set()
    for folder in CODE:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return names


def test_package_xml_declares_ament_python_and_exactly_the_ros_packages_imported():
    root = ET.parse(REPO / "package.xml").getroot()  # noqa: S314 (our own file)
    assert root.get("format") == "3"
    assert root.findtext("name") == "lane_seg"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    imported = _imported_top_level_names()
    assert deps & ROS_PACKAGES == imported & ROS_PACKAGES  # none missing, none unused
    assert {key for name, key in PYTHON_KEYS.items() if name in imported} <= deps


def test_workspace_source_points_at_this_package():
    assert (REPO / "ros2_ws" / "src" / "lane_seg").resolve() == REPO
