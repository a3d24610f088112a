"""`lane-seg baselines`: the training README's table comes from the runs' files and a fresh
`lane-seg eval`, and replaces the README's section (with the command that made it)."""

from __future__ import annotations

import json

import yaml
from lane_data import make_line_dataset
from test_real_scoreboard import fake_comma
from test_training import tiny_config

from lane_seg.cli.main import main
from lane_seg.cli.readme import markers
from lane_seg.training.eval.evaluate import run_eval


def test_baselines_table_from_two_runs(tmp_path):
    data = make_line_dataset(tmp_path / "ds", n_train=8, n_val=4)
    first = tiny_config(data, tmp_path / "runs" / "first", epochs=2)
    second = tiny_config(data, tmp_path / "runs" / "second", epochs=1)
    second["train"]["init_from"] = str(tmp_path / "runs" / "first" / "best.pt")
    configs = []
    for name, cfg in (("first", first), ("second", second)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        assert main(["train", "--config", str(path), "--no-progress"]) == 0
        configs.append(str(path))
    start, end = markers("baselines")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Training\n\n{start}\nan old table typed by hand\n{end}\n\nafter\n")
    out = tmp_path / "baselines"
    fake_comma(tmp_path / "shared")  # a labelled real source under a data root
    real = str(tmp_path / "shared")
    argv = [
        "baselines",
        "--config",
        *configs,
        "--data",
        str(data),
        "--real",
        real,
        "--latency",
        "1",
    ]
    assert main([*argv, "--out", str(out), "--readme", str(readme)]) == 0

    rows = json.loads((out / "baselines.json").read_text())
    assert [r["steps"] for r in rows] == [4, 2]  # 8 frames / batch 4 per epoch
    assert rows[0]["init_from"] == "" and rows[1]["init_from"].endswith("first/best.pt")
    assert all(r["cpu_min"] is not None and r["wall_min"] >= 0 for r in rows), rows
    again = run_eval(tmp_path / "runs" / "second" / "best.pt", data, tmp_path / "e", "val")
    assert rows[1]["val"]["lane_iou"] == again["lane_iou"] and rows[1]["val"]["images"] == 4
    assert rows[0]["latency"]["onnxruntime-cpu"] > 0  # the int8 file of each architecture, timed
    comma = rows[1]["real"]["comma10k_sample"]  # every frame, by the source's own labels
    assert comma["frames"] == 6 and 0.0 <= comma["tol_f1"] <= 1.0

    text = readme.read_text()
    assert "typed by hand" not in text and text.endswith(f"{end}\n\nafter\n")
    assert f"Regenerate with `lane-seg baselines --config {configs[0]} {configs[1]}" in text
    line = next(ln for ln in text.splitlines() if configs[1] in ln and ln.startswith("|"))
    assert f"| {100 * again['lane_iou']:.1f} |" in line and "first/best.pt" in line
    cell = f"{100 * comma['lane_iou']:.1f} / {100 * comma['tol_f1']:.1f}"
    assert (
        "comma10k_sample IoU / F1@8 %" in text
        and "int8 onnxruntime p50 ms" in text
        and line.endswith(f"| {cell} |")
    )


def test_training_readme_has_the_section_the_command_writes():
    from pathlib import Path

    from lane_seg.cli.readme import check_section

    check_section(Path(__file__).resolve().parents[1] / "training" / "README.md", "baselines")
