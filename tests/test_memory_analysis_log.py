"""memory/analysis_log.py: analysis.log lines and JSON-lines metrics, from real files."""

from __future__ import annotations

import logging
import math

import pytest

from memory.analysis_log import parse_number, read_metrics
from memory.errors import ParseError

LOG = """\
=== final analysis ===
rate_constants_R2: 0.8691
avg_slope_ratio=1.05e+00
test_R2 = -766043.33
phase2_loss: nan
grad_norm: inf
low: -INF
tiny: 3E-5

Training finished: loss went down a lot
epoch 3: loss=0.5
note: see plots
rate_constants_R2: 0.75
"""


def test_reads_both_separators_scientific_negative_nan_inf(tmp_path):
    path = tmp_path / "analysis.log"
    path.write_text(LOG)
    metrics = read_metrics(path)
    assert metrics["avg_slope_ratio"] == 1.05
    assert metrics["test_R2"] == -766043.33
    assert metrics["tiny"] == 3e-5
    assert math.isnan(metrics["phase2_loss"])
    assert metrics["grad_norm"] == math.inf and metrics["low"] == -math.inf
    assert all(isinstance(value, float) for value in metrics.values())
    assert set(metrics) == {
        "rate_constants_R2",
        "avg_slope_ratio",
        "test_R2",
        "phase2_loss",
        "grad_norm",
        "low",
        "tiny",
    }


def test_repeated_name_keeps_last_value_with_a_warning(tmp_path, caplog):
    path = tmp_path / "analysis.log"
    path.write_text(LOG)
    with caplog.at_level(logging.WARNING, logger="memory.analysis_log"):
        metrics = read_metrics(path)
    assert metrics["rate_constants_R2"] == 0.75
    assert any("analysis.log:13: rate_constants_R2 given again" in record.getMessage() for record in caplog.records)


def test_jsonl_last_value_wins_and_non_numbers_are_ignored(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 1, "loss": 2.5, "tag": "warmup", "ok": true}\n'
        "\n"
        '{"step": 2, "loss": "nan", "acc": 0.5, "lr": "1e-3", "hist": [1, 2], "none": null}\n'
        "not json\n"
        "[1, 2]\n"
        '{"step": 3, "grad": "-inf", "acc": Infinity}\n'
    )
    with caplog.at_level(logging.WARNING, logger="memory.analysis_log"):
        metrics = read_metrics(path)
    assert metrics["step"] == 3.0
    assert math.isnan(metrics["loss"])
    assert metrics["lr"] == 0.001 and metrics["grad"] == -math.inf and metrics["acc"] == math.inf
    assert not {"tag", "ok", "hist", "none"} & set(metrics)
    messages = [record.getMessage() for record in caplog.records]
    assert any("metrics.jsonl:4: not JSON" in message for message in messages)
    assert any("metrics.jsonl:5: not a JSON object" in message for message in messages)


def test_missing_file_is_a_parse_error_naming_it(tmp_path):
    with pytest.raises(ParseError, match="nope.log"):
        read_metrics(tmp_path / "nope.log")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1e-3", 0.001),
        ("-2", -2.0),
        (".5", 0.5),
        ("+3.", 3.0),
        ("NaN", math.nan),
        ("-Infinity", -math.inf),
        ("0.5 best", None),
        ("1_000", None),
        ("", None),
    ],
)
def test_parse_number(text, expected):
    value = parse_number(text)
    if expected is None:
        assert value is None
    elif math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == expected
