"""Feeds a small perception pipeline from a recording instead of the robot.

    python examples/replay_pipeline.py DATA_DIR

Like dimos' `ReplayConnection`: a stub connection whose streams replay `fake_go2.rec` (written
by record_sensor.py) with the original timing, looping, from a seek position.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from reactivex import operators as ops

import fake_msgs  # noqa: F401  (the recorded message types, for unpickling)
from recfile.dimos import TimedSensorReplay


class ReplayConnection:
    """Stands in for the robot connection: the same stream methods, fed by the recording."""

    dir_name = "fake_go2"

    def __init__(self, data_dir: str, **kwargs: Any) -> None:
        self.data_dir = data_dir
        self.replay_config = {"loop": kwargs.get("loop"), "seek": kwargs.get("seek"), "duration": kwargs.get("duration")}

    def lidar_stream(self) -> Any:
        store = TimedSensorReplay(f"{self.dir_name}/lidar", data_dir=self.data_dir)
        return store.stream(speed=4.0, **self.replay_config)

    def odom_stream(self) -> Any:
        store = TimedSensorReplay(f"{self.dir_name}/odom", data_dir=self.data_dir)
        return store.stream(speed=4.0, **self.replay_config)


def main() -> None:
    connection = ReplayConnection(sys.argv[1], loop=True, seek=0.5)
    nearest_obstacles: list[float] = []
    poses: list[float] = []
    finished = threading.Event()
    # The "pipeline": nearest obstacle per scan, and the latest pose.
    connection.lidar_stream().pipe(ops.map(lambda scan: min(scan.ranges)), ops.take(12)).subscribe(
        on_next=nearest_obstacles.append, on_completed=finished.set
    )
    pose_sub = connection.odom_stream().subscribe(on_next=lambda o: poses.append(o.x))
    finished.wait(30)
    pose_sub.dispose()
    print(f"pipeline saw {len(nearest_obstacles)} scans (nearest obstacle {min(nearest_obstacles):.3f} m)")
    print(f"and {len(poses)} poses, looping from 0.5 s in")
    assert len(nearest_obstacles) == 12 and poses


if __name__ == "__main__":
    main()
