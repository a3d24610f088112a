"""The layer rule of docs/architecture.md, checked on the code's own imports (read with `ast`,
nothing imported):

1. no import cycles between the package's modules;
2. each layer imports only the layers below it: core <- runtime <- ros, core <- runtime <-
   training, and sim above ros; only the application layer (cli, bench, demo) imports
   training and sim;
3. no import inside a function between project modules, unless it defers a heavy third-party
   package (torch, rclpy, OpenCV, ...) that the importing module does not load already;
4. no project module imported by name at run time (importlib), so the graph above is complete;
5. nothing below the application layer knows a command line: no `argparse` there, anywhere in
   a module (the commands turn arguments into config dataclasses and pass those down).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Where each import name lives (setup.py's package_dir).
FOLDERS = {"lane_seg": REPO / "lane_seg", "lane_seg.sim": REPO / "sim"}
FOLDERS["lane_seg.training"] = REPO / "training"
LAYERS = {  # layer -> the layers it may import (itself included)
    "core": {"core"},
    "runtime": {"core", "runtime"},
    "ros": {"core", "runtime", "ros"},
    "training": {"core", "runtime", "training"},
    "sim": {"core", "runtime", "ros", "sim"},
    "application": {"core", "runtime", "ros", "training", "sim", "application"},
}
PREFIXES = {  # module prefix -> layer; the longest prefix that matches wins
    "lane_seg": "core",
    "lane_seg.runtime": "runtime",
    "lane_seg.ros": "ros",
    "lane_seg.training": "training",
    "lane_seg.sim": "sim",
    "lane_seg.cli": "application",
    "lane_seg.bench": "application",
    "lane_seg.demo": "application",
}
HEAVY = {
    "numpy", "cv2", "torch", "onnx", "onnxruntime", "openvino", "matplotlib", "rclpy", "rosbags",
    "carla", "sensor_msgs", "std_msgs", "nav_msgs", "geometry_msgs", "diagnostic_msgs",
    "rcl_interfaces", "builtin_interfaces", "ament_index_python", "visualization_msgs",
}  # fmt: skip


@dataclass
class Module:
    name: str
    path: Path
    top: set[str] = field(default_factory=set)  # project modules imported at module level
    deferred: dict[str, int] = field(default_factory=dict)  # ... inside functions: line
    third_party: set[str] = field(default_factory=set)  # top-level names, module level
    dynamic: list[int] = field(default_factory=list)  # lines of importlib calls
    anywhere: dict[str, int] = field(default_factory=dict)  # every top-level name imported: line


def layer(module: str) -> str:
    best = max((p for p in PREFIXES if module == p or module.startswith(p + ".")), key=len)
    return PREFIXES[best]


@cache
def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for base, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("").parts
            parts = [base, *rel[:-1]] + ([] if rel[-1] == "__init__" else [rel[-1]])
            name = ".".join(parts)
            if name.startswith("lane_seg.") and name.count(".") >= 1:
                inner = name.split(".")[1]
                if base == "lane_seg" and inner in ("sim", "training"):
                    continue
            found[name] = Module(name, path)
    for m in found.values():
        _read(m, set(found))
    return found


def _targets(node: ast.AST, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level or not node.module:
        raise AssertionError("relative import")  # the code uses absolute imports only
    subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known]
    return subs or [node.module]


def _read(m: Module, known: set[str]) -> None:
    tree = ast.parse(m.path.read_text())

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in _targets(child, known):
                    m.anywhere.setdefault(target.split(".")[0], child.lineno)
                    if target.split(".")[0] == "lane_seg":
                        if in_function:
                            m.deferred.setdefault(target, child.lineno)
                        else:
                            m.top.add(target)
                    elif not in_function:
                        m.third_party.add(target.split(".")[0])
            if isinstance(child, ast.Call) and "import_module" in ast.unparse(child.func):
                m.dynamic.append(child.lineno)
            function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, in_function or function)

    visit(tree, False)


@cache
def loads(name: str) -> frozenset[str]:
    """Third-party packages that importing `name` loads: its module-level imports, transitively,
    the parent packages' __init__ included."""
    mods = modules()
    seen, todo, out = set(), [name], set()
    while todo:
        n = todo.pop()
        if n in seen or n not in mods:
            continue
        seen.add(n)
        out |= mods[n].third_party
        todo += [*mods[n].top, *(".".join(n.split(".")[:i]) for i in range(1, n.count(".") + 1))]
    return frozenset(out)


def test_the_module_table_covers_the_package():
    mods = modules()
    assert {"lane_seg.cli.main", "lane_seg.sim.world.render"} <= set(mods)
    assert {"lane_seg.training.train.trainer", "lane_seg.models.unet"} <= set(mods)
    assert len(mods) > 100


def test_no_import_cycles():
    mods = modules()
    graph = {n: (m.top | set(m.deferred)) & set(mods) for n, m in mods.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(n: str, stack: list[str]) -> None:
        state[n] = 1
        for dep in sorted(graph[n]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                walk(dep, [*stack, dep])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            walk(n, [n])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_each_layer_imports_only_the_layers_below_it():
    wrong = [
        f"{m.name} ({layer(m.name)}) imports {dep} ({layer(dep)})"
        for m in modules().values()
        for dep in sorted(m.top | set(m.deferred))
        if layer(dep) not in LAYERS[layer(m.name)]
    ]
    assert not wrong, "\n".join(wrong)


def test_imports_inside_functions_only_defer_heavy_packages():
    wrong = []
    for m in modules().values():
        for dep, line in sorted(m.deferred.items()):
            deferred = (loads(dep) - loads(m.name)) & HEAVY
            if not deferred:
                wrong.append(f"{m.path.relative_to(REPO)}:{line}: {dep} defers nothing heavy")
    assert not wrong, "\n".join(wrong)


def test_the_command_line_parser_loads_nothing_heavy():
    """`lane-seg --help` (every command's parser) stays fast and needs no optional extra."""
    assert not loads("lane_seg.cli.main") & HEAVY


def test_no_module_is_imported_by_name_at_run_time():
    found = [f"{m.path.relative_to(REPO)}:{line}" for m in modules().values() for line in m.dynamic]
    assert not found, found


def test_only_the_application_layer_knows_a_command_line():
    found = [
        f"{m.path.relative_to(REPO)}:{m.anywhere['argparse']}: imports argparse"
        for m in modules().values()
        if "argparse" in m.anywhere and layer(m.name) != "application"
    ]
    assert not found, "\n".join(found)
    assert "argparse" in modules()["lane_seg.cli.train"].anywhere  # the check sees imports


def test_videos_are_opened_only_by_the_one_frame_reader():
    """One frame reader (docs/architecture.md, `lane_seg.data.frames`): no other module of the
    package or of studies/ opens a video with OpenCV."""
    reader = REPO / "lane_seg" / "data" / "frames.py"
    paths = [m.path for m in modules().values()] + sorted((REPO / "studies").rglob("*.py"))
    found = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in paths
        if path != reader
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "VideoCapture"
    ]
    assert not found, "open videos through lane_seg.data.frames.Video:\n" + "\n".join(found)
    assert "VideoCapture" in reader.read_text()  # the check looks for the right name
