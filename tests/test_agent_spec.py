"""Spec loading: the shipped specs load; a bad spec stops with one line naming file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_helpers import SPEC, write_spec

from agent.cli import main
from agent.playbook import load_playbook
from agent.spec import load_spec
from memory.errors import SpecError

REPO = Path(__file__).resolve().parents[1]


def test_the_demo_spec_loads():
    spec = load_spec(REPO / "configs" / "demo.yaml")
    assert spec.name == "demo" and spec.slots.values == (4, 16, 32, 64)
    assert [p.short for p in spec.space.by_priority()][:3] == ["lr_node_homeo", "lr_emb_homeo", "data_aug"]
    assert spec.space.get("strategy").code_strategy
    assert spec.objective.primary == "worst_slope_ratio"  # issue 17: every type judged


def test_the_seed_scale_spec_loads():
    path = REPO / "configs" / "phase2_homeostasis.yaml"
    spec = load_spec(path)
    assert spec.exploration.n_iter_block == 8 and spec.exploration.replicates == 2


def test_spec_dir_in_the_command_is_the_spec_files_folder():
    """A user's script next to its spec runs whatever folder ucbx is started from."""
    spec = load_spec(REPO / "examples" / "my_train_spec.yaml")
    assert spec.trainer.command[1] == str(REPO / "examples" / "my_train.py")
    assert "{config}" in spec.trainer.command and "{run_dir}" in spec.trainer.command


def test_playbook_code_strategies_are_choices_of_the_shipped_specs():
    spec = load_spec(REPO / "configs" / "demo.yaml")
    choices = set(spec.space.get("strategy").choices)
    playbook = load_playbook("metabolism")
    for action in [rule.action for rule in playbook.rules] + [playbook.default]:
        assert set(action.code_strategies) <= choices, action.rule


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("  budget: 48", "  budget: -1", "exploration.budget: must be >= 1, got -1"),
        ("  budget: 48", "  budgit: 48", "exploration.budgit: unknown key"),
        (
            "{kind: float, low: 1.0e-4, high: 1.0, log: true,\n    short: lr_node_homeo",
            "{kind: float, low: abc, high: 1.0, log: true,\n    short: lr_node_homeo",
            "search_space.training.learning_rate_node_homeostasis.low: must be a number, got 'abc'",
        ),
        (
            "{kind: float, low: 1.0e-4, high: 1.0, log: true,\n    short: lr_node_homeo",
            "{kind: float, low: 0, high: 1.0, log: true,\n    short: lr_node_homeo",
            "must be > 0 for a log-scaled parameter",
        ),
        ("short: lr_emb_homeo", "short: lr_node_homeo", "short alias 'lr_node_homeo' is used twice"),
        ("base_config: base.yaml", "base_config: missing.yaml", "trainer.base_config: file not found"),
        ("frozen: [simulation]", "frozen: [training]", "frozen: 'training' freezes the searched key"),
        ("  playbook: metabolism", "  playbook: nope", "exploration.playbook: no playbook 'nope'"),
        (
            "  key: training.homeostasis_time_step",
            "  key: training.nothing",
            "slots.key: 'training.nothing' is not set",
        ),
        (
            "{metric: avg_slope_ratio, kind: ratio, target: 1.0}",
            "{metric: avg_slope_ratio, kind: ratoi}",
            "objective.terms[0].kind: must be one of ratio, maximize, minimize",
        ),
        ("  seed_key: training.seed\n", "", "exploration.replicates: needs trainer.seed_key"),
    ],
)
def test_a_bad_spec_names_file_key_and_reason(tmp_path, old, new, message):
    assert old in SPEC
    path = write_spec(tmp_path, SPEC.replace(old, new))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_the_base_config_value_must_lie_in_the_search_space(tmp_path):
    path = write_spec(tmp_path, SPEC.replace("low: 10, high: 5000", "low: 200, high: 5000"))
    with pytest.raises(SpecError, match="training.data_augmentation_loop: base config value refused"):
        load_spec(path)


def test_overrides_set_spec_keys(tmp_path):
    spec = load_spec(write_spec(tmp_path), {"exploration.budget": 5, "trainer.base_config": "base.yaml"})
    assert spec.exploration.budget == 5


def test_the_cli_prints_one_line_and_exits_2_without_running(tmp_path, capsys):
    path = write_spec(tmp_path, SPEC.replace("  budget: 48", "  budget: x"))
    assert main(["run", str(path), "--workdir", str(tmp_path / "runs")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "exploration.budget: must be an integer" in error
    assert not (tmp_path / "runs").exists()
