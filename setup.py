"""ament_python package definition of lead_ros (colcon build and plain pip install)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "lead_ros"
GOLDEN_FOLDERS = ("", "images/", "preprocessing/", "variants/", "variants/token256/", "variants/mixed/", "aux/")

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    # Golden data: lead-ros selftest and the tests read it (each folder named explicitly).
    package_data={
        PACKAGE: ["data/manifests/*.json", "data/rigs/*.yaml", *(f"data/ltfv6_reference/{d}*" for d in GOLDEN_FOLDERS)]
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml") + glob("config/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="lead_ros maintainers",
    maintainer_email="maintainers@lead-ros.invalid",
    description="ROS 2 node and tools for the LTFv6 end-to-end driving planner",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "lead-ros = lead_ros.tools.cli:main",
            "lead_planner = lead_ros.ros.process:main",
        ],
    },
)
