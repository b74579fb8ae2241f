"""Records a fake robot's sensors with the dimos API, backed by one .rec file.

    python examples/record_sensor.py DATA_DIR [SECONDS]

Writes DATA_DIR/fake_go2.rec with streams `lidar` (10 Hz) and `odom` (50 Hz), as a dimos module
would with `TimedSensorStorage("fake_go2/lidar")`. Only the import differs from dimos code.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import reactivex as rx
from reactivex import operators as ops

from fake_msgs import LidarScan, Odometry
from recfile.dimos import TimedSensorStorage


class FakeSensorModule:
    """Publishes lidar and odometry as reactivex streams, like a dimos connection."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def lidar_stream(self) -> rx.Observable:
        n = int(self.seconds * 10)
        return rx.interval(0.1).pipe(
            ops.take(n),
            ops.map(lambda i: LidarScan(time.time(), [1.0 + 0.1 * math.sin(i / 5 + k) for k in range(360)])),
        )

    def odom_stream(self) -> rx.Observable:
        n = int(self.seconds * 50)
        return rx.interval(0.02).pipe(
            ops.take(n),
            ops.map(lambda i: Odometry(time.time(), 0.01 * i, 0.0, 0.001 * i)),
        )


def main() -> None:
    data_dir = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    module = FakeSensorModule(seconds)
    lidar_store = TimedSensorStorage("fake_go2/lidar", data_dir=data_dir)
    odom_store = TimedSensorStorage("fake_go2/odom", data_dir=data_dir)
    done = [threading.Event(), threading.Event()]
    module.lidar_stream().subscribe(on_next=lidar_store.save_one, on_completed=done[0].set)
    module.odom_stream().pipe(ops.flat_map(lambda m: odom_store.save_stream(rx.just(m)))).subscribe(
        on_completed=done[1].set
    )
    for d in done:
        d.wait(seconds + 5)
    print(f"recorded {lidar_store.count()} lidar scans and {odom_store.count()} odometry messages")
    lidar_store.close()
    odom_store.close()


if __name__ == "__main__":
    main()
