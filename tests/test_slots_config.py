"""Slot configs: building, validating, writing and hashing; every refusal with its message."""

from __future__ import annotations

import pytest
import yaml

from memory.errors import ConfigError
from slots.config import build_slot_config, config_hash, get_path, load_config, set_path, validate_config, write_config
from slots.space import Parameter, SearchSpace, SlotSet

BASE = {
    "simulation": {"n_nodes": 100, "noise": 0.1},
    "training": {
        "learning_rate": 0.01,
        "batch_size": 8,
        "strategy": "rollout",
        "homeostasis_time_step": 1,
        "freeze_stoichiometry": True,
        "seed": 0,
    },
    "plotting": {"dpi": 100},
}
SPACE = SearchSpace(
    (
        Parameter("training.learning_rate", "float", "lr", low=1e-4, high=1.0, log=True),
        Parameter("training.batch_size", "int", "batch_size", low=2, high=32),
        Parameter("training.strategy", "choice", "strategy", choices=("rollout", "residual")),
        Parameter("training.new_flag", "bool", "new_flag"),
        Parameter("simulation.noise", "float", "noise", low=0.0, high=1.0),
    )
)
SLOTS = SlotSet("training.homeostasis_time_step", (4, 16, 32, 64))
FROZEN = ("simulation", "training.freeze_stoichiometry", "training.homeostasis_time_step")


def build(mutations, slot=1):
    return build_slot_config(BASE, SLOTS, slot, mutations, SPACE, FROZEN)


def test_build_sets_slot_value_and_mutations_and_keeps_base_untouched():
    before = yaml.safe_dump(BASE)
    config = build({"training.learning_rate": 0.03, "batch_size": 16})
    assert get_path(config, "training.homeostasis_time_step") == 16
    assert config["training"]["learning_rate"] == 0.03
    assert config["training"]["batch_size"] == 16
    assert yaml.safe_dump(BASE) == before
    assert list(config["training"]) == list(BASE["training"])


def test_build_coerces_and_may_add_a_searchable_key_absent_from_base():
    config = build({"training.batch_size": 4.0, "training.new_flag": True})
    assert config["training"]["batch_size"] == 4 and isinstance(config["training"]["batch_size"], int)
    assert config["training"]["new_flag"] is True


@pytest.mark.parametrize(
    "mutations, message",
    [
        (
            {"training.seed": 3},
            "training.seed: is not in the search space; only search-space keys may differ from the base config",
        ),
        (
            {"training.homeostasis_time_step": 8},
            "training.homeostasis_time_step: is the fixed value of slot 1 (homeostasis_time_step=16); "
            "a slot's fixed value is never changed",
        ),
        (
            {"training.freeze_stoichiometry": False},
            "training.freeze_stoichiometry: is frozen; frozen keys are never changed",
        ),
        (
            {"simulation.noise": 0.2},
            "simulation.noise: is frozen (section simulation is frozen); frozen keys are never changed",
        ),
        ({"training.learning_rate": 2.0}, "training.learning_rate: 2.0 is above the upper bound 1.0"),
        ({"lr": 1e-6}, "training.learning_rate: 1e-06 is below the lower bound 0.0001"),
        ({"training.batch_size": 3.5}, "training.batch_size: 3.5 is not an integer"),
        ({"training.learning_rate": "fast"}, "training.learning_rate: 'fast' is not a number"),
        ({"training.learning_rate": float("nan")}, "training.learning_rate: nan is not finite"),
        ({"training.strategy": "magic"}, "training.strategy: 'magic' is not one of ['rollout', 'residual']"),
        ({"training.new_flag": "yes"}, "training.new_flag: 'yes' is not true or false"),
    ],
)
def test_build_refuses_with_key_and_reason(mutations, message):
    with pytest.raises(ConfigError) as error:
        build(mutations)
    assert str(error.value) == message


def test_build_refuses_a_slot_that_does_not_exist():
    with pytest.raises(ConfigError, match=r"^slot 4: does not exist; the spec has slots 0-3$"):
        build({}, slot=4)


def test_set_path_copies_and_refuses_to_descend_into_a_value():
    config = set_path(BASE, "training.extra.depth", 2)
    assert config["training"]["extra"] == {"depth": 2} and "extra" not in BASE["training"]
    with pytest.raises(ConfigError, match=r"^training.seed.x: cannot set it, training.seed is a value"):
        set_path(BASE, "training.seed.x", 1)


def test_get_path_default_and_missing():
    assert get_path(BASE, "plotting.dpi") == 100
    assert get_path(BASE, "plotting.size", None) is None
    with pytest.raises(KeyError):
        get_path(BASE, "plotting.size")


def check(config, slot=1):
    validate_config(config, BASE, SLOTS, slot, SPACE, FROZEN)


def test_validate_accepts_a_built_config_read_back_from_disk(tmp_path):
    path = tmp_path / "slots" / "slot_01.yaml"
    write_config(path, build({"training.learning_rate": 0.5}))
    check(load_config(path))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["training"].update(homeostasis_time_step=32),
            "training.homeostasis_time_step: is 32 but slot 1 runs with 16",
        ),
        (
            lambda c: c["training"].pop("homeostasis_time_step"),
            "training.homeostasis_time_step: is missing but slot 1 runs with 16",
        ),
        (
            lambda c: c["plotting"].update(dpi=300),
            "plotting.dpi: is not in the search space; only search-space keys may differ from the base config",
        ),
        (
            lambda c: c["plotting"].update(style="dark"),
            "plotting.style: is not in the search space; only search-space keys may differ from the base config",
        ),
        (
            lambda c: c["simulation"].update(noise=0.5),
            "simulation.noise: is frozen (section simulation is frozen); frozen keys are never changed",
        ),
        (
            lambda c: c["training"].update(freeze_stoichiometry=1),
            "training.freeze_stoichiometry: is frozen; frozen keys are never changed",
        ),
        (lambda c: c["training"].update(batch_size=64), "training.batch_size: 64 is above the upper bound 32"),
        (
            lambda c: c["training"].pop("seed"),
            "training.seed: is missing; it is in the base config and may not be removed",
        ),
    ],
)
def test_validate_refuses_edits_with_key_and_reason(edit, message):
    config = build({})
    edit(config)
    with pytest.raises(ConfigError) as error:
        check(config)
    assert str(error.value) == message


def test_write_config_is_atomic_and_keeps_key_order(tmp_path):
    path = tmp_path / "slot_00.yaml"
    config = {"zeta": 1, "alpha": {"b": 2, "a": 1}}
    write_config(path, config)
    assert path.read_text() == "zeta: 1\nalpha:\n  b: 2\n  a: 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["slot_00.yaml"]


def test_load_config_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: not valid YAML at line 3 \("):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n")
    with pytest.raises(ConfigError, match=rf"^{listing}: expected a mapping of config sections, found list$"):
        load_config(listing)
    with pytest.raises(ConfigError, match=r"absent.yaml: cannot read it \(No such file or directory\)$"):
        load_config(tmp_path / "absent.yaml")


def test_config_hash_is_stable_and_ignores_key_order():
    a = {"training": {"lr": 0.1, "batch": 4}, "name": "x"}
    b = {"name": "x", "training": {"batch": 4, "lr": 0.1}}
    assert config_hash(a) == config_hash(b)
    assert len(config_hash(a)) == 12 and int(config_hash(a), 16) >= 0
    assert config_hash(a) != config_hash({**a, "name": "y"})
