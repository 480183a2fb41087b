"""Start seg_accel_node as a managed lifecycle node, configured and activated by default.

    ros2 launch seg_accel_ros seg_accel.launch.py image:=/camera/image_raw namespace:=front
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(
        get_package_share_directory("seg_accel_ros"), "config", "seg_accel.yaml")
    image = LaunchConfiguration("image")
    autostart = LaunchConfiguration("autostart")

    node = LifecycleNode(
        package="seg_accel_ros",
        executable="seg_accel_node",
        name=LaunchConfiguration("node_name"),
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"),
                    {"use_sim_time": LaunchConfiguration("use_sim_time")}],
        remappings=[("image", image), ("image/compressed", [image, "/compressed"])],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        output="screen",
    )
    configure = EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node),
                          transition_id=Transition.TRANSITION_CONFIGURE),
        condition=IfCondition(autostart))
    activate_when_configured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
            entities=[EmitEvent(event=ChangeState(
                lifecycle_node_matcher=matches_action(node),
                transition_id=Transition.TRANSITION_ACTIVATE))]),
        condition=IfCondition(autostart))

    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="image",
                              description="Input image topic (raw; '/compressed' is appended "
                                          "for input_transport:=compressed)."),
        DeclareLaunchArgument("namespace", default_value="", description="Node namespace."),
        DeclareLaunchArgument("node_name", default_value="seg_accel_node",
                              description="Node name."),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="Parameter file (see config/seg_accel.yaml)."),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="Configure and activate the node on start."),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="Take time from /clock (a bag played with --clock)."),
        DeclareLaunchArgument("log_level", default_value="info", description="Log level."),
        activate_when_configured,
        node,
        configure,
    ])
