"""Our launch files evaluated without `launch` and `launch_ros` (they come with a ROS 2 install,
not from PyPI): minimal stand-ins for the few classes the files use record what they are given,
launch arguments are resolved as `ros2 launch` resolves them, and each Node becomes the command
line that launch_ros would run (parameter dicts written to a YAML file, as launch_ros does).
What this cannot catch is a misuse of the real API beyond these classes; test_node_config.py
builds the real description where launch_ros is installed."""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class _Recorded:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class LaunchDescription(_Recorded):
    pass


class DeclareLaunchArgument(_Recorded):
    pass


class IncludeLaunchDescription(_Recorded):
    pass


class PythonLaunchDescriptionSource(_Recorded):
    pass


class LaunchConfiguration(_Recorded):
    pass


class PathJoinSubstitution(_Recorded):
    pass


class Node(_Recorded):
    pass


class ParameterValue(_Recorded):
    pass


class FindPackageShare(_Recorded):
    pass


def _stub_modules() -> dict[str, types.ModuleType]:
    names = {
        "launch": {"LaunchDescription": LaunchDescription},
        "launch.actions": {
            "DeclareLaunchArgument": DeclareLaunchArgument,
            "IncludeLaunchDescription": IncludeLaunchDescription,
        },
        "launch.launch_description_sources": {
            "PythonLaunchDescriptionSource": PythonLaunchDescriptionSource
        },
        "launch.substitutions": {
            "LaunchConfiguration": LaunchConfiguration,
            "PathJoinSubstitution": PathJoinSubstitution,
        },
        "launch_ros": {},
        "launch_ros.actions": {"Node": Node},
        "launch_ros.parameter_descriptions": {"ParameterValue": ParameterValue},
        "launch_ros.substitutions": {"FindPackageShare": FindPackageShare},
    }
    mods = {}
    for name, attrs in names.items():
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        mods[name] = mod
    return mods


@dataclass
class NodeSpec:
    package: str
    executable: str
    name: str
    namespace: str
    parameters: list[Any]  # params file paths (str) and {name: typed value} dicts
    remappings: list[tuple[str, str]]
    extra: dict[str, Any] = field(default_factory=dict)

    def ros_args(self, tmp: Path) -> list[str]:
        """What launch_ros passes to the executable."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:=/{self.namespace.strip('/')}"]
        for i, p in enumerate(self.parameters):
            if isinstance(p, dict):
                path = tmp / f"{self.name}_params_{i}.yaml"
                path.write_text(yaml.safe_dump({"/**": {"ros__parameters": p}}))
                p = path
            args += ["--params-file", str(p)]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args


class Context:
    def __init__(self, share: Path, arguments: dict[str, str]) -> None:
        self.share = share
        self.config = dict(arguments)  # command-line arguments win over declared defaults

    def perform(self, sub: Any) -> Any:
        if isinstance(sub, str):
            return sub
        if isinstance(sub, list | tuple):
            return "".join(self.perform(s) for s in sub)
        if isinstance(sub, LaunchConfiguration):
            return self.config[sub.args[0]]
        if isinstance(sub, FindPackageShare):
            assert sub.args[0] == "lane_seg", sub.args
            return str(self.share)
        if isinstance(sub, PathJoinSubstitution):
            return str(Path(*(self.perform(s) for s in sub.args[0])))
        raise TypeError(f"no stand-in for {type(sub).__name__}")

    def value(self, v: Any) -> Any:
        """A parameter value: ParameterValue's value_type applied, else YAML typing (launch_ros)."""
        if isinstance(v, ParameterValue):
            text = self.perform(v.args[0])
            kind = v.kwargs.get("value_type")
            return kind(text) if kind is not None else yaml.safe_load(text)
        if isinstance(v, str):
            return v
        return yaml.safe_load(self.perform(v))


def _load(path: Path, ctx: Context) -> list[NodeSpec]:
    saved = {k: sys.modules.get(k) for k in _stub_modules()}
    sys.modules.update(_stub_modules())
    try:
        spec = importlib.util.spec_from_file_location(f"launch_file_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        description = mod.generate_launch_description()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    nodes: list[NodeSpec] = []
    for entity in description.args[0]:
        if isinstance(entity, DeclareLaunchArgument):
            name = entity.args[0]
            assert entity.kwargs.get("description"), f"{path.name}: {name} has no description"
            ctx.config.setdefault(name, ctx.perform(entity.kwargs["default_value"]))
        elif isinstance(entity, IncludeLaunchDescription):
            source = entity.args[0]
            assert isinstance(source, PythonLaunchDescriptionSource)
            nodes += _load(Path(ctx.perform(source.args[0])), ctx)
        elif isinstance(entity, Node):
            kw = dict(entity.kwargs)
            params = [
                {k: ctx.value(v) for k, v in p.items()} if isinstance(p, dict) else ctx.perform(p)
                for p in kw.pop("parameters", [])
            ]
            nodes.append(
                NodeSpec(
                    package=kw.pop("package"),
                    executable=kw.pop("executable"),
                    name=kw.pop("name"),
                    namespace=ctx.perform(kw.pop("namespace", "")),
                    parameters=params,
                    remappings=[
                        (ctx.perform(a), ctx.perform(b)) for a, b in kw.pop("remappings", [])
                    ],
                    extra=kw,
                )
            )
        else:
            raise TypeError(f"{path.name}: no stand-in for {type(entity).__name__}")
    return nodes


def launch(path: Path, share: Path, **arguments: str) -> list[NodeSpec]:
    """The nodes `ros2 launch` would start for `path` with these arguments."""
    return _load(path, Context(share, arguments))
