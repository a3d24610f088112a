"""Standard drives for the closed loop: scenario files with fixed seeds, so runs compare.

A scenario file (YAML, `config/scenarios/*.yaml`) names the worlds (seeds), the distance to
drive in each, the speed and camera rate, and overrides of the simulator's ranges (`sim:`, any
`SimConfig` field) that make it a highway, a winding road, a night or a rainy drive.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lane_seg import resources
from lane_seg.errors import LaneSegError
from lane_seg.settings import REQUIRED, from_mapping, read_yaml, setting
from lane_seg.sim.world.scene import SimConfig


@dataclass(frozen=True)
class Scenario:
    name: str
    seeds: tuple[int, ...] = setting(REQUIRED, "worlds to drive", range=(0, 2**31 - 1))
    distance_m: float = setting(REQUIRED, "metres to drive in each world", range=(1.0, 100000.0))
    speed_mps: float = setting(REQUIRED, "speed, m/s", range=(0.5, 60.0))
    fps: float = setting(15.0, "camera frames per second", range=(1.0, 120.0))
    start_offset_m: float = setting(
        0.0, "start this far left of the lane centre, m (recovery)", range=(-3.0, 3.0)
    )
    description: str = ""
    sim: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the file it came from (not a key of the file)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds must be an integer or a list of integers")

    def sim_config(self) -> SimConfig:
        return SimConfig.from_dict(self.sim, source=f"{self.source} (sim)")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "scenario") -> Scenario:
        if isinstance(data, dict) and isinstance(data.get("seeds"), int):
            data = {**data, "seeds": [data["seeds"]]}  # one seed may be given bare
        sc = from_mapping(cls, data, source, exclude=("source",))
        sc = dataclasses.replace(sc, source=source)
        sc.sim_config()  # unknown or malformed simulator settings fail here, with the file name
        return sc

    @classmethod
    def load(cls, name_or_path: str | Path) -> Scenario:
        """A scenario file, or the name of a standard one (e.g. `tight_curves`)."""
        path = Path(name_or_path)
        if not path.exists() and str(name_or_path) in standard_scenarios():
            path = resources.scenario_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise LaneSegError(
                f"scenario {name_or_path} not found; give a YAML file or one of: "
                + ", ".join(standard_scenarios())
            )
        return cls.from_dict(read_yaml(path, "scenario"), source=str(path))


def standard_scenarios() -> list[str]:
    """The names of the scenario files shipped in `config/scenarios/`."""
    return sorted(p.stem for p in resources.scenario_dir().glob("*.yaml"))
