"""The message types of the fake robot (importable by both the recorder and the replayer, as
real message types are)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LidarScan:
    """A fake lidar message: timestamp and ranges."""

    ts: float
    ranges: list[float]


@dataclass
class Odometry:
    """A fake odometry message."""

    ts: float
    x: float
    y: float
    theta: float
