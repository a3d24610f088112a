"""ros2 launch lane_seg seg.launch.py image_topic:=/camera/image_raw   (the shipped model)

The segmentation node alone; lane_keeping.launch.py adds the lane controller.
Arguments: model (default auto: the most accurate shipped int8 model that meets the node's
latency_budget_ms here), engine, image_topic, camera_info_topic,
input_transport, params_file, namespace.
Compressed camera stream:
  input_transport:=compressed image_topic:=/camera/image_raw/compressed
"""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare("lane_seg"), "config", "seg.yaml"])
    arguments = [
        DeclareLaunchArgument(
            "model",
            default_value="auto",
            description="model file (.onnx); auto = the most accurate shipped int8 model that "
            "meets latency_budget_ms here",
        ),
        DeclareLaunchArgument(
            "engine",
            default_value="auto",
            description="auto | onnxruntime | onnxruntime-cpu | onnxruntime-cuda | "
            "onnxruntime-tensorrt | openvino | torch",
        ),
        DeclareLaunchArgument(
            "image_topic", default_value="/camera/image_raw", description="camera topic"
        ),
        DeclareLaunchArgument(
            "input_transport",
            default_value="raw",
            description="raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage)",
        ),
        DeclareLaunchArgument(
            "params_file", default_value=default_params, description="node parameter YAML"
        ),
        DeclareLaunchArgument(
            "camera_info_topic",
            default_value="/camera/camera_info",
            description="CameraInfo for lane geometry (~/lane_center)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
    ]
    node = Node(
        package="lane_seg",
        executable="seg_node",
        name="seg_node",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        # later entries win: the launch arguments override the YAML
        parameters=[
            LaunchConfiguration("params_file"),
            {  # typed as strings: an empty model (the shipped one) or a numeric path stay str
                name: ParameterValue(LaunchConfiguration(name), value_type=str)
                for name in ("model", "engine", "input_transport")
            },
        ],
        remappings=[
            ("~/image", LaunchConfiguration("image_topic")),
            ("~/image/compressed", LaunchConfiguration("image_topic")),
            ("~/camera_info", LaunchConfiguration("camera_info_topic")),
        ],
    )
    return LaunchDescription([*arguments, node])
