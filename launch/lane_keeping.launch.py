"""ros2 launch lane_seg lane_keeping.launch.py image_topic:=/camera/image_raw

Segmentation and control: seg.launch.py (the segmentation node, with all its arguments) and the
lane controller, whose private topics are wired here: `~/lane_center` <- the segmentation
node's `seg_node/lane_center`, `~/cmd_vel` -> `cmd_topic`. Relative names resolve inside
`namespace`, so one launch per vehicle or camera (namespace:=front) keeps them apart.

Arguments: those of seg.launch.py, controller_params_file, cmd_topic.
"""

from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("lane_seg")
    arguments = [
        DeclareLaunchArgument(
            "controller_params_file",
            default_value=PathJoinSubstitution([share, "config", "controller.yaml"]),
            description="the controller's parameter YAML",
        ),
        DeclareLaunchArgument(
            "cmd_topic",
            default_value="cmd_vel",
            description="where the geometry_msgs/TwistStamped commands go (relative: in namespace)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of both nodes"),
    ]
    segmentation = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "seg.launch.py"]))
    )
    controller = Node(
        package="lane_seg",
        executable="lane_controller",
        name="lane_controller",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[LaunchConfiguration("controller_params_file")],
        remappings=[
            ("~/lane_center", "seg_node/lane_center"),
            ("~/cmd_vel", LaunchConfiguration("cmd_topic")),
        ],
    )
    return LaunchDescription([*arguments, segmentation, controller])
