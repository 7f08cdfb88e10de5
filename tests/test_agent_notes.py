"""The evidence ledger, the working-memory sections, the Visual and Observation lines, the live view."""

from __future__ import annotations

import io
import json
from dataclasses import replace

from agent_helpers import LR_NODE, fake_spec, make_spec, node, root_params, state_of
from rich.console import Console

from agent import daemon
from agent.analysis import Outcome, observation, visual_line
from agent.driver import Exploration
from agent.evidence import Ledger
from agent.folder import ExplorationFolder
from agent.history import Change, Proposal
from agent.live import LiveReporter, format_status, status_view
from agent.notes import update_memory
from agent.spec import load_spec
from memory.working_memory import KNOWN_SECTIONS, fresh_memory, render_memory


def lr_up_history(count: int = 3):
    """Root node 1, then ``count`` children that each raised lr_node_homeo and gained reward."""
    records = [node(1, None, reward=0.3)]
    for node_id in range(2, count + 2):
        record = node(
            node_id,
            1,
            slot=node_id % 4,
            reward=0.3 + 0.1 * node_id,
            params=root_params(learning_rate_node_homeostasis=0.01 * node_id),
        )
        record.changes = (Change(LR_NODE, 0.01, 0.01 * node_id),)
        record.mode = "exploit"
        records.append(record)
    return records, {r.node_id: r.reward for r in records}


def test_a_consistent_direction_becomes_a_principle_with_its_evidence():
    records, pooled = lr_up_history()
    principles = Ledger(records, pooled).principles()
    assert len(principles) == 1
    principle = principles[0]
    assert principle.key == LR_NODE and principle.direction == "up" and principle.helps
    assert principle.held == 3 and [e.iteration for e in principle.effects] == [2, 3, 4]


def test_memory_sections_hold_principles_outcomes_questions_and_blocks(tmp_path):
    spec = make_spec(tmp_path)
    records, pooled = lr_up_history(count=8)
    memory = fresh_memory("unit")
    memory.sections["Directives"] = "- pin batch_size = 8\n"
    memory.sections["My Notes"] = "keep me\n"
    update_memory(memory, spec, state_of(records, spec))
    text = render_memory(memory)
    assert "**lr_node_homeo up helps**" in text and "held 8/8 (iters 2, 3, 4, 5, 6, 7, 8, 9)" in text
    assert "| rollout | homeostasis_time_step=4 |" in text
    assert "never mutated here: lr_emb_homeo" in text
    assert "Block 1 (iters 1-8): 8 partial" in text and "Block 2 (iters 9-16)" in text
    assert "- Iter 9 (node 9, parent 1, slot_1)" in text
    assert "- pin batch_size = 8\n" in text and "keep me" in text
    assert all(f"## {section}" in text for section in KNOWN_SECTIONS)


def test_memory_stays_within_its_bound_on_a_long_campaign(tmp_path):
    spec = make_spec(tmp_path)
    records, pooled = lr_up_history(count=400)
    memory = fresh_memory("unit")
    update_memory(memory, spec, state_of(records, spec))
    assert render_memory(memory).count("\n") <= 300


def test_observation_compares_with_the_parent(tmp_path):
    spec = make_spec(tmp_path)
    parent = node(1, None, reward=0.21, metrics={"avg_slope_ratio": 0.12})
    proposal = Proposal(
        slot=0, parent=1, mode="exploit", params=root_params(), seed=7, changes=(Change(LR_NODE, 0.01, 0.03),)
    )
    outcome = Outcome({"avg_slope_ratio": 0.45}, "partial", 0.48)
    text = observation(spec, proposal, outcome, parent, best_before=0.3)
    assert text == (
        "avg_slope_ratio 0.12 -> 0.45 (+0.33) after lr_node_homeo 0.01 -> 0.03; reward 0.21 -> 0.48; best reward so far"
    )
    failed = Outcome({}, "failed", None, "diverged: nan in phase2_loss")
    assert (
        observation(spec, proposal, failed, parent, 0.5)
        == "diverged: nan in phase2_loss after lr_node_homeo 0.01 -> 0.03"
    )


def metabolism_visual(**changes) -> dict:
    """A visual.json in the shape trainers/metabolism/train.py writes (two metabolite types)."""
    fit = {"offset": 0.0, "gt_offset": 0.0, "slope_ratio": 0.9, "offset_ratio": 1.0, "range": [1.0, 9.0]}
    visual = {
        "diverged": False,
        "amplification": 1.0,
        "mlp_node": {
            "magnitude": 0.05,
            "gt_magnitude": 0.06,
            "per_type": [
                {**fit, "type": 0, "slope": -0.00091, "gt_slope": -0.001, "linearity_r2": 0.99},
                {**fit, "type": 1, "slope": -0.00182, "gt_slope": -0.002, "linearity_r2": 0.97},
            ],
        },
        "embedding": {"n_clusters": 2.0, "accuracy": 0.971, "silhouette": 0.8, "n_types": 2},
        "rate_constants_R2": 0.9,
    }
    visual.update(changes)
    return visual


def test_the_visual_line_comes_from_the_trainers_describe_module(tmp_path):
    spec = load_spec(fake_spec(tmp_path))
    assert visual_line(spec, tmp_path).startswith("none (the spec names no trainer.describe)")
    spec = replace(spec, trainer=replace(spec.trainer, describe="metabolism"))
    assert visual_line(spec, tmp_path) == "none (the run wrote no visual.json)"
    (tmp_path / "visual.json").write_text(json.dumps(metabolism_visual()))
    assert visual_line(spec, tmp_path) == (
        "MLP_node=active: slopes -0.0009/-0.0018 vs GT -0.001/-0.002, near-linear, "
        "Embeddings=separated: 2 clusters, acc=0.97"
    )
    (tmp_path / "visual.json").write_text(json.dumps(metabolism_visual(diverged=True)))
    assert visual_line(spec, tmp_path).startswith("MLP_node=diverged: nan output, slopes -0.0009/-0.0018 vs GT")


def test_a_malformed_visual_json_gives_a_line_naming_the_problem(tmp_path):
    spec = load_spec(fake_spec(tmp_path))
    spec = replace(spec, trainer=replace(spec.trainer, describe="metabolism"))
    visual = metabolism_visual()
    del visual["mlp_node"]["magnitude"]
    (tmp_path / "visual.json").write_text(json.dumps(visual))
    assert visual_line(spec, tmp_path) == "unavailable (describe_visual raised KeyError: 'magnitude')"
    (tmp_path / "visual.json").write_text('{"mlp_node": ')
    line = visual_line(spec, tmp_path)
    assert line.startswith("unreadable visual.json (Expecting value: line 1") and "\n" not in line


def test_the_live_view_and_status_render(tmp_path):
    spec = load_spec(fake_spec(tmp_path))
    exploration = Exploration(spec, ExplorationFolder(tmp_path / "runs", spec.name))
    report = daemon.step_once(exploration, launch=False)
    buffer = io.StringIO()
    with LiveReporter(Console(file=buffer, force_terminal=True, width=140)) as reporter:
        reporter.update(exploration, report)
    assert "slot_0 (homeostasis_time_step=4)" in buffer.getvalue()
    assert format_status(status_view(exploration)).count(": pending node") == 4
