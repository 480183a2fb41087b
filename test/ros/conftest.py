"""The cross-process ROS 2 tests need rclpy; the fixtures live in test/conftest.py."""

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (make setup installs it)")
