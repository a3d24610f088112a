"""lane_seg: a pip package and a ROS 2 ament_python package from one setup.py.

`training/` and `sim/` live at the top of the repository (docs/architecture.md, Layout) but
install as `lane_seg.training` and `lane_seg.sim`, so nothing generic lands in site-packages.
The files the code reads at run time (config/, config/scenarios/, models/, launch/) install to
`share/lane_seg`, where lane_seg.resources finds them (pip, a wheel, or colcon).
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "lane_seg"

# Import name -> folder. Sub-packages of each folder follow it (lane_seg.sim.x -> sim/x).
PACKAGE_DIR = {"lane_seg": "lane_seg", "lane_seg.training": "training", "lane_seg.sim": "sim"}
PACKAGES = [
    f"{name}.{sub}" if sub else name
    for name, folder in PACKAGE_DIR.items()
    for sub in ["", *find_packages(folder)]
]

ROS = [
    "ros-rclpy[fastrtps]",
    "ros-sensor-msgs",
    "ros-std-msgs",
    "ros-nav-msgs",
    "ros-geometry-msgs",
    "ros-diagnostic-msgs",
    "ros-visualization-msgs",
]
TRAIN = ["torch==2.13.0", "onnx>=1.16", "pyyaml>=6", "matplotlib>=3.7", "tqdm>=4.60"]
CARLA = ["carla==0.9.16"]
BAG = ["rosbags>=0.10"]
OPENVINO = ["openvino>=2024.0"]
DEV = ["pytest>=8", "ruff>=0.6", "colcon-core", "colcon-ros"]

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Real-time lane segmentation for ROS 2, from simulator to int8 node.",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    install_requires=[
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "onnxruntime>=1.17",
        "pyyaml>=6",
        "tqdm>=4.60",
    ],
    extras_require={
        "train": TRAIN,
        "ros": ROS,
        "carla": CARLA,
        "bag": BAG,
        "openvino": OPENVINO,
        "dev": DEV,
        "all": TRAIN + ROS + CARLA + BAG + OPENVINO + DEV,
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/config/scenarios", glob("config/scenarios/*.yaml")),
        (
            f"share/{PACKAGE}/models",
            glob("models/*.onnx") + glob("models/*.md") + glob("models/*.json"),
        ),
    ],
    entry_points={
        "console_scripts": [
            "lane-seg = lane_seg.cli.main:main",
            "seg_node = lane_seg.ros.entry_points:seg_node",
            "lane_controller = lane_seg.ros.entry_points:lane_controller",
        ],
    },
    zip_safe=True,
)
