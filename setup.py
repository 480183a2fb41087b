"""ament_python build of seg_accel_ros (also installable with pip on machines without ROS)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "seg_accel_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={f"{PACKAGE}.models": ["weights/*.pt", "weights/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    # ROS parts (rclpy, message packages) come from the ROS install or requirements-ros.txt;
    # they are deliberately not listed here.
    install_requires=["setuptools", "numpy", "opencv-python-headless", "pyyaml"],
    zip_safe=False,
    maintainer="seg_accel_ros maintainers",
    maintainer_email="seg-accel@example.com",
    description="Accelerated real-time semantic segmentation for ROS 2 camera streams.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            f"seg_accel_node = {PACKAGE}.ros.process:main",
            f"seg_accel_eval = {PACKAGE}.tools.entry_points:seg_accel_eval",
            f"seg_accel_tune = {PACKAGE}.tools.entry_points:seg_accel_tune",
            f"seg_accel_replay = {PACKAGE}.tools.replay:main",
            f"seg_accel_bench = {PACKAGE}.tools.bench:main",
            f"seg_accel_train = {PACKAGE}.tools.train:main",
            f"seg_accel_demo = {PACKAGE}.tools.demo:main",
            f"seg_accel_to_bag = {PACKAGE}.tools.to_bag:main",
            f"seg_accel_headroom = {PACKAGE}.tools.headroom:main",
            f"seg_accel_train_fusion = {PACKAGE}.tools.train_fusion:main",
            f"seg_accel_train_policy = {PACKAGE}.tools.train_policy:main",
            f"seg_accel_dds_clean = {PACKAGE}.tools.dds_clean:main",
        ],
    },
)
