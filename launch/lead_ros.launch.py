"""Launch the LTFv6 planner node: ``ros2 launch lead_ros lead_ros.launch.py``.

The node is a lifecycle node; with ``autostart:=true`` (default) it configures and activates
itself. Ctrl-C stops it cleanly (exit 0), also with launch's second, forwarded SIGINT.

The planner is what this launch file is for: when it exits, the launch shuts down, and when
it exits with an error (it could not start: bad weights, a bad parameter), ``ros2 launch``
exits non-zero, so scripts and systemd see the failure. The planner ends with the launch
process (``LEAD_ROS_EXIT_WITH_PARENT``): ``kill -TERM`` to ``ros2 launch`` alone, which
stops no child (ros2/launch#666), leaves no planner behind.

Arguments given on the command line override the params file. Equivalent direct command:
``ros2 run lead_ros lead_planner --ros-args --params-file <share>/config/lead_ros.yaml``.
"""

import os

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from lead_ros.model.runtimes import runtime_choices
from lead_ros.ros.process import EXIT_WITH_PARENT_ENV
from lead_ros.ros.topics import launch_argument, remappable_topics

# The node's private topics (the topic table, lead_ros/ros/topics.py); each gets a
# <name>_topic launch argument to remap it. All are declared, whatever the parameters: a
# launch file cannot know camera_mode or command_input.
TOPICS = remappable_topics()
OVERRIDABLE = ("weights", "device", "precision", "runtime")


def _flag(context, name: str) -> bool:
    return LaunchConfiguration(name).perform(context).lower() == "true"


class PlannerFailed(RuntimeError):
    """Raised in the launch's event handling: ``ros2 launch`` then shuts down and exits 1."""


def planner_exited(event, context):
    """The planner ended: shut the launch down; with an error, fail it (exit code 1)."""
    if event.returncode != 0:
        raise PlannerFailed(f"lead_planner exited with code {event.returncode} (its reason is logged above)")
    return [EmitEvent(event=Shutdown(reason="lead_planner exited"))]


def _launch_setup(context):
    overrides = {"use_sim_time": _flag(context, "use_sim_time"), "autostart": _flag(context, "autostart")}
    for name in OVERRIDABLE:
        value = LaunchConfiguration(name).perform(context)
        if value:  # empty: keep the params file's value
            overrides[name] = value
    planner = Node(
        package="lead_ros",
        executable="lead_planner",
        name=LaunchConfiguration("node_name"),
        namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), overrides],
        remappings=[(t.name, LaunchConfiguration(launch_argument(t))) for t in TOPICS],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
        additional_env={EXIT_WITH_PARENT_ENV: "1"},
        output="screen",
        emulate_tty=True,
    )
    actions = [planner, RegisterEventHandler(OnProcessExit(target_action=planner, on_exit=planner_exited))]
    if _flag(context, "rviz"):
        try:
            get_package_share_directory("rviz2")
        except PackageNotFoundError:
            return [*actions, LogInfo(msg="rviz:=true but rviz2 is not installed; starting the planner without it")]
        config = os.path.join(get_package_share_directory("lead_ros"), "config", "lead_ros.rviz")
        actions.append(Node(package="rviz2", executable="rviz2", arguments=["-d", config], output="log"))
    return actions


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory("lead_ros"), "config", "lead_ros.yaml")
    arguments = [
        DeclareLaunchArgument(
            "params_file",
            default_value=default_params,
            description="ROS 2 params file with the lead_planner parameters.",
        ),
        DeclareLaunchArgument(
            "weights",
            default_value="",
            description="Weights: path or hf://OWNER/REPO[@REV]; empty keeps the params file's.",
        ),
        DeclareLaunchArgument(
            "device", default_value="", description="auto, cpu, cuda or cuda:N; empty keeps the params file's."
        ),
        DeclareLaunchArgument(
            "precision", default_value="", description="fp32, fp16 or bf16; empty keeps the params file's."
        ),
        DeclareLaunchArgument(
            "runtime", default_value="", description=f"{', '.join(runtime_choices())}; empty keeps the params file's."
        ),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the node."),
        DeclareLaunchArgument("node_name", default_value="lead_planner", description="Name of the node."),
        DeclareLaunchArgument(
            "autostart",
            default_value="true",
            description="Configure and activate at start-up; false leaves the lifecycle node "
            "unconfigured for a lifecycle manager (e.g. Nav2's, with bond_timeout 0.0).",
        ),
        DeclareLaunchArgument(
            "use_sim_time", default_value="false", description="Follow /clock (true when replaying a bag with --clock)."
        ),
        DeclareLaunchArgument(
            "log_level", default_value="info", description="Logger level: debug, info, warn, error or fatal."
        ),
        DeclareLaunchArgument(
            "rviz",
            default_value="false",
            description="Also start rviz2 with config/lead_ros.rviz (when rviz2 is installed).",
        ),
    ]
    arguments += [
        DeclareLaunchArgument(launch_argument(t), default_value=t.name, description=f"{t.name}: {t.description}")
        for t in TOPICS
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch_setup)])
