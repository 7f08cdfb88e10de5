"""The progress protocol (memory/progress.py): lines written by the built-in trainers while they train,
read back whatever a file holds (garbage, a huge file, steps going backwards) with a warning and no crash."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from memory.progress import PROGRESS_NAME, append_progress, read_progress, read_run_progress, value_at

REPO = Path(__file__).resolve().parents[1]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_appended_lines_read_back_with_their_fraction_and_metrics(tmp_path):
    path = tmp_path / PROGRESS_NAME
    append_progress(path, 10, 40, {"loss": 0.5, "acc": math.nan})
    append_progress(path, 20, 40, {"loss": 0.25})
    read = read_progress(path)
    assert read.warnings == [] and read.exists
    assert [p.fraction for p in read.points] == [0.25, 0.5]
    assert read.points[0].metrics["loss"] == 0.5 and math.isnan(read.points[0].metrics["acc"])
    assert read.last.metrics == {"loss": 0.25} and read.last.time is not None
    assert not read_progress(tmp_path / "absent.jsonl").exists


def test_garbage_lines_are_skipped_counted_and_named_once(tmp_path):
    path = tmp_path / PROGRESS_NAME
    path.write_bytes(
        b'{"step": 1, "of": 4, "loss": 0.9}\n'
        b"\x00\xff garbage\n"
        b"[1, 2]\n"
        b'{"of": 4, "loss": 0.1}\n'
        b'{"step": 2, "of": 0, "loss": 0.1}\n'
        b'{"step": 2, "of": 4, "loss": 0.8, "note": "text is not a metric"}\n'
        b'{"step": 3, "of": 4, "lo'
    )
    read = read_progress(path)
    assert [p.step for p in read.points] == [1, 2]
    assert read.points[1].metrics == {"loss": 0.8}
    assert read.warnings == [f"{path}: 5 unreadable lines skipped (first: line 2: not JSON)"]


def test_a_step_going_back_keeps_the_newest_run_and_warns(tmp_path):
    path = tmp_path / PROGRESS_NAME
    for step, loss in ((1, 0.9), (2, 0.8), (3, 0.7), (1, 0.95), (2, 0.85), (2, 0.84)):
        append_progress(path, step, 3, {"loss": loss})
    read = read_progress(path)
    assert [(p.step, p.metrics["loss"]) for p in read.points] == [(1, 0.95), (2, 0.84)]
    assert read.warnings == [f"{path}:4: step went back from 3 to 1; read from there"]


def test_a_huge_file_is_read_from_its_tail_only(tmp_path):
    path = tmp_path / PROGRESS_NAME
    line = '{"step": STEP, "of": 1000000, "loss": 0.5, "padding": "' + "x" * 200 + '"}\n'
    with open(path, "w") as handle:
        for step in range(1, 20001):  # about 4.5 MB
            handle.write(line.replace("STEP", str(step)))
    limit = 1 << 20
    read = read_progress(path, limit)
    assert read.warnings == [f"{path}: larger than {limit} bytes; only its last {limit} bytes are read"]
    assert read.last.step == 20000 and 0 < len(read.points) <= limit // len(line) + 1
    assert [p.step for p in read.points] == list(range(int(read.points[0].step), 20001))


def test_value_at_interpolates_between_points_and_says_nothing_outside_them(tmp_path):
    path = tmp_path / PROGRESS_NAME
    for step, loss in ((2, 1.0), (4, 0.5), (8, 0.25)):
        append_progress(path, step, 8, {"loss": loss})
    points = read_progress(path).points

    def loss(point):
        return point.metrics.get("loss")

    assert value_at(points, 0.5, loss) == 0.5
    assert value_at(points, 0.75, loss) == 0.375
    assert value_at(points, 0.1, loss) is None and value_at(points, 1.0, loss) == 0.25
    assert value_at(points[:2], 0.75, loss) is None


def test_a_json_lines_metrics_file_with_step_and_of_is_the_progress_when_there_is_no_progress_file(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "of": 2, "acc": 0.5}\n{"step": 2, "of": 2, "acc": 0.7}\n')
    assert [p.metrics["acc"] for p in read_run_progress(tmp_path, "metrics.jsonl").points] == [0.5, 0.7]
    assert not read_run_progress(tmp_path, "analysis.log").exists
    append_progress(tmp_path / PROGRESS_NAME, 1, 4, {"acc": 0.1})
    assert [p.metrics["acc"] for p in read_run_progress(tmp_path, "metrics.jsonl").points] == [0.1]


def tiny(preset: str, tmp_path: Path, **training) -> Path:
    config = yaml.safe_load((REPO / "configs" / preset / "tiny.yaml").read_text())
    config["training"].update(training)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_causal_trainer_writes_a_line_per_epoch(tmp_path):
    from trainers.causal.train import run

    run(tiny("causal", tmp_path, epochs=4), tmp_path / "run")
    written = lines(tmp_path / "run" / PROGRESS_NAME)
    assert [(line["step"], line["of"]) for line in written] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all({"train_loss", "val_loss", "edge_count", "time"} <= set(line) for line in written)
    assert "val_f1" not in written[-1]  # scored against the true graph: never during training


def test_the_gflownet_trainer_writes_every_few_percent(tmp_path):
    from trainers.gflownet.train import run

    run(tiny("gflownet", tmp_path, n_steps=40), tmp_path / "run")
    written = lines(tmp_path / "run" / PROGRESS_NAME)
    assert [line["step"] for line in written] == list(range(2, 41, 2))
    assert all(line["of"] == 40 and {"loss", "mean_reward"} <= set(line) for line in written)


def test_the_metabolism_trainer_writes_phase2_loss_every_few_percent(tmp_path):
    from trainers.metabolism.train import run

    config = tiny(
        "metabolism", tmp_path, cache_dir=str(tmp_path / "cache"), data_augmentation_loop=40, phase2_strategy="rollout"
    )
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / PROGRESS_NAME).write_text('{"step": 99, "of": 99}\n')  # an earlier run's file is replaced
    metrics = run(config, tmp_path / "run")
    written = lines(tmp_path / "run" / PROGRESS_NAME)
    assert [line["step"] for line in written] == list(range(2, 41, 2))
    assert all(line["of"] == 40 and {"phase2_loss", "phase2_train_loss"} <= set(line) for line in written)
    assert math.isclose(written[-1]["phase2_loss"], metrics["phase2_loss"], rel_tol=1e-6)  # the same model
    # the evaluation metrics at the 5 checkpoints (training.progress_checkpoints), the last one as the log says
    checkpoints = [line for line in written if "worst_slope_ratio" in line]
    assert [line["step"] for line in checkpoints] == [8, 16, 24, 32, 40]
    judged = ("MLP_node_slope_ratio_0", "MLP_node_slope_ratio_1", "embedding_cluster_acc_strict", "rate_constants_R2")
    assert all(set(judged) | {"rate_constants_R2_drop", "worst_slope_vs_ceiling"} <= set(line) for line in checkpoints)
    for name in (*judged, "worst_slope_ratio", "rate_constants_R2_drop"):
        assert math.isclose(checkpoints[-1][name], metrics[name], rel_tol=1e-5, abs_tol=1e-9), name


def test_value_at_passes_over_lines_without_the_value(tmp_path):
    # a metric evaluated only at checkpoints (every 4th line) while a loss is on every line
    path = tmp_path / PROGRESS_NAME
    for step in range(1, 9):
        append_progress(path, step, 8, {"loss": 1.0 / step, **({"ratio": step / 8} if step % 4 == 0 else {})})
    read = read_progress(path)

    def ratio(point):
        return point.metrics.get("ratio")

    assert value_at(read.points, 0.5, ratio) == 0.5
    assert value_at(read.points, 0.75, ratio) == 0.75  # between the checkpoints at 50% and 100%
    assert value_at(read.points, 0.25, ratio) is None  # before the first checkpoint
    assert read.latest_metrics == {"loss": 0.125, "ratio": 1.0}
    assert read_progress(path).points[6].metrics == {"loss": 1.0 / 7}  # lines keep what they said
