"""Standard drives for the closed loop: scenario files with fixed seeds, so runs compare.

A scenario file (YAML, `config/scenarios/*.yaml`) names the worlds (seeds), the distance to
drive in each, the speed and camera rate, and overrides of the simulator's ranges (`sim:`, any
`SimConfig` field) that make it a highway, a winding road, a night or a rainy drive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lane_seg import resources
from lane_seg.errors import LaneSegError
from lane_seg.sim.world.scene import SimConfig

KEYS = {"name", "description", "seeds", "distance_m", "speed_mps", "fps", "start_offset_m", "sim"}


@dataclass(frozen=True)
class Scenario:
    name: str
    seeds: tuple[int, ...]
    distance_m: float
    speed_mps: float
    fps: float = 15.0
    start_offset_m: float = 0.0  # start this far left of the lane centre (recovery)
    description: str = ""
    sim: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def sim_config(self) -> SimConfig:
        return SimConfig.from_dict(self.sim, source=f"{self.source} (sim)")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "scenario") -> Scenario:
        if not isinstance(data, dict):
            raise LaneSegError(f"{source}: a scenario is a mapping with keys {sorted(KEYS)}")
        unknown = sorted(set(data) - KEYS)
        if unknown:
            raise LaneSegError(f"{source}: unknown scenario keys {unknown}; known: {sorted(KEYS)}")
        missing = sorted({"name", "seeds", "distance_m", "speed_mps"} - set(data))
        if missing:
            raise LaneSegError(f"{source}: missing scenario keys {missing}")
        seeds = data["seeds"]
        seeds = [seeds] if isinstance(seeds, int) else seeds
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise LaneSegError(f"{source}: seeds must be an integer or a list of integers")
        try:
            sc = cls(
                name=str(data["name"]),
                seeds=tuple(int(s) for s in seeds),
                distance_m=float(data["distance_m"]),
                speed_mps=float(data["speed_mps"]),
                fps=float(data.get("fps", 15.0)),
                start_offset_m=float(data.get("start_offset_m", 0.0)),
                description=str(data.get("description", "")),
                sim=dict(data.get("sim") or {}),
                source=source,
            )
        except (TypeError, ValueError) as exc:
            raise LaneSegError(f"{source}: {exc}") from None
        if sc.distance_m <= 0 or sc.speed_mps <= 0 or sc.fps <= 0:
            raise LaneSegError(f"{source}: distance_m, speed_mps and fps must be positive")
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
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise LaneSegError(f"cannot read scenario {path}: {exc}") from exc
        return cls.from_dict(data, source=str(path))


def standard_scenarios() -> list[str]:
    """The names of the scenario files shipped in `config/scenarios/`."""
    return sorted(p.stem for p in resources.scenario_dir().glob("*.yaml"))
