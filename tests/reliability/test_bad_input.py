"""Bad input: property-based tests (hypothesis) over specs, configs and command arguments.

- Any malformed spec (a value replaced by anything YAML can hold, a key removed or
  added) ends in one `SpecError` line naming the file and a key it changed (or one on
  that key's path, or another field of the same entry), and `ucbx status` prints exactly
  that line with exit 2: never a traceback. A mutation that leaves a valid spec is told
  apart: `status` then goes past the spec and says the folder holds no exploration yet.
- Garbage spec text is one `SpecError` line naming the file and where: the line and
  column (or position) where YAML stopped, the top level, or one of its keys.
- YAML is loaded safely everywhere a person's file is read (spec, base config, slot
  config, `--set`, directives): object tags are refused and never run.
- Values with shell metacharacters (in the trainer's arguments, in the exploration
  folder's path, in config values) reach the trainer as plain arguments and file
  contents, through the real launcher and runner (and the real SLURM): no shell, ever.

CI runs `max_examples` = 40 per property; UCBX_RELIABILITY=long runs 1000 (the
launcher property 15 and 150: each example is a real job).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import io
import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from agent.cli import main
from agent.spec import load_spec
from memory.directives import parse_directive
from memory.errors import ConfigError, SpecError
from slots.config import load_config
from slots.journal import Journal
from slots.launcher import JobRequest, make_launcher

from .harness import (
    LONG,
    SLURM,
    TRAINER,
    check_exploration,
    environment,
    record_figures,
    ucbx,
    write_spec,
)

EXAMPLES = 1000 if LONG else 40
JOB_EXAMPLES = 150 if LONG else 15
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
JOBS = settings(
    max_examples=JOB_EXAMPLES,
    deadline=None,
    derandomize=not LONG,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def tried():
    """What the tests of this module tried, by kind; written to the figures when the module is done."""
    counts: collections.Counter[str] = collections.Counter()
    yield counts
    if counts:
        record_figures("bad-input", **counts)


# keys without line breaks: a key holding one has its own test below
keys = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=8)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        ["", "local", "slurm", "float", "choice", "maximize", "ratio", ">=", "{config}", "~", "yes", "1e-3"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)


def valid_spec(folder: Path) -> dict:
    return yaml.safe_load(write_spec(folder).read_text())


def paths(tree, prefix=()):
    """Every (path, value) of a nested spec, lists by index."""
    yield prefix, tree
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from paths(value, prefix + (index,))


@st.composite
def mutations(draw):
    """(action, path index, new value, new key): applied to the valid spec by `mutate`."""
    return (draw(st.sampled_from(["replace", "delete", "add"])), draw(st.integers(0, 10**6)), draw(values), draw(keys))


def mutate(spec: dict, mutation) -> tuple[dict, tuple]:
    action, index, value, key = mutation
    spec = copy.deepcopy(spec)
    candidates = [path for path, _ in paths(spec) if path]
    path = candidates[index % len(candidates)]
    parent = spec
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    else:
        parent[last] = value
    return spec, path


def dotted(path: tuple) -> str:
    """A spec path as a refusal names it: ``search_space.train.lr.low``, ``objective.terms[0].kind``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def value_at(spec, path: tuple):
    """The value at ``path`` in ``spec``; `KeyError` when a later change removed it."""
    for part in path:
        if not isinstance(spec, (dict, list)) or (isinstance(spec, list) and not isinstance(part, int)):
            raise KeyError(part)
        try:
            spec = spec[part]
        except IndexError:
            raise KeyError(part) from None
    return spec


def names_a_changed_key(named: str, path: tuple, spec: dict) -> bool:
    """``named`` (the refusal without its file) is about the key at ``path`` of the mutated ``spec``.

    It names: that key, or a key on its path below its section (the entry or list holding it); its
    section when the key is directly in it; a key inside the value put there (unknown, missing);
    another field of the same entry (a parameter's, a term's, a band's or a guard's: `high` checked
    against a changed `low`, the bounds a changed `kind` needs); the section of a deeper key with the
    value now at the key quoted (a short alias used twice); or, for a nested key, the key itself in the
    reason (`exploration.replicates: needs trainer.seed_key`). A refusal that names only the section
    of a deeper key, or no key, is not enough.
    """
    key = dotted(path)
    reason = named.split(": ", 1)[-1]
    shallowest = 1 if len(path) <= 2 else 2  # the section itself names a key directly in it
    if any(named.startswith(dotted(path[:end]) + ": ") for end in range(shallowest, len(path) + 1)):
        return True
    if named.startswith((key + ".", key + "[")):
        return True
    if len(path) >= 3 and named.startswith(dotted(path[:-1]) + "."):
        return True
    if named.startswith(dotted(path[:1]) + ": "):
        try:
            value = value_at(spec, path)
        except KeyError:
            return False
        return isinstance(value, str) and repr(value) in reason
    return len(path) >= 2 and re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.\[])", reason) is not None


def refusal(error: SpecError, spec_path: Path) -> str:
    """The refusal's text after ``FILE: ``, checked to be one line starting with the file."""
    message = str(error)
    assert "\n" not in message and len(message.splitlines()) == 1, message
    assert message.startswith(f"{spec_path}: "), message
    return message[len(f"{spec_path}: ") :]


def check_refusal(error: SpecError, spec_path: Path, changed: list[tuple], spec: dict) -> None:
    """One line naming the file and a key one of the ``changed`` paths touched (see `names_a_changed_key`)."""
    named = refusal(error, spec_path)
    assert any(names_a_changed_key(named, path, spec) for path in changed), (str(error), [dotted(p) for p in changed])


def status_error(spec_path: Path, workdir: Path) -> tuple[int, str]:
    """`ucbx status SPEC --workdir DIR` in this process: its exit code and what it wrote to stderr."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(["status", str(spec_path), "--workdir", str(workdir)])
    return code, stderr.getvalue()


@PROPERTY
@given(st.lists(mutations(), min_size=1, max_size=3))
def test_any_malformed_spec_is_one_line_naming_file_and_key(tmp_path_factory, tried, changes):
    """A mutated spec is refused in one line naming the file and a changed key, which `ucbx status` prints
    as is; a mutation can leave a valid spec (a new budget, another valid choice), and then `status` goes
    past the spec and says the folder has no exploration yet."""
    folder = tmp_path_factory.mktemp("spec")
    spec = valid_spec(folder)
    touched = []
    for change in changes:
        spec, path = mutate(spec, change)
        touched.append(path)
    spec_path = folder / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    workdir = folder / "none"
    try:
        load_spec(spec_path)
    except SpecError as error:
        check_refusal(error, spec_path, touched, spec)
        expected = f"ucbx: error: {error}\n"
        tried["malformed specs refused"] += 1
    else:
        expected = f"ucbx: error: {workdir}: no exploration here yet (start one with `ucbx run {spec_path}`)\n"
        tried["malformed specs that still load"] += 1
    assert status_error(spec_path, workdir) == (2, expected)


@pytest.mark.parametrize("key", ["\r", "a\nb", "x\u2028y", " \x85"])
def test_an_unknown_key_with_a_line_break_is_still_one_line(tmp_path, key):
    spec = valid_spec(tmp_path)
    spec["trainer"][key] = 1
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    with pytest.raises(SpecError) as refused:
        load_spec(spec_path)
    assert len(str(refused.value).splitlines()) == 1, str(refused.value)


@PROPERTY
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
@example("name: [unclosed")
@example("\t- tab\n  indent: :")
@example("&a [*a]")
@example("name: rel\nname: rel\n")
def test_garbage_spec_text_is_one_line_naming_where(tmp_path_factory, tried, text):
    folder = tmp_path_factory.mktemp("garbage")
    spec_path = folder / "spec.yaml"
    spec_path.write_text(text, encoding="utf-8", errors="surrogateescape")
    tried["garbage spec files"] += 1
    with pytest.raises(SpecError) as refused:
        load_spec(spec_path)
    named = refusal(refused.value, spec_path)
    try:
        document = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as problem:  # where YAML itself stopped: line and column, or position
        mark = getattr(problem, "problem_mark", None) or getattr(problem, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else f"position {problem.position}"
        assert named.startswith("not valid YAML (") and where in named, (str(refused.value), where)
        return
    if not isinstance(document, dict):
        assert named.startswith("top level: must be a mapping, got "), str(refused.value)
        return
    keys = {str(k) for k in document} | {"name", "trainer", "slots", "search_space", "objective"}
    keys |= {repr(k) for k in keys}  # a key with a line break in it is quoted
    assert any(named.startswith((k + ": ", k + ".", k + "[")) for k in keys), (str(refused.value), keys)


DANGEROUS_YAML = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:subprocess.check_output [['touch', '{marker}']]",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:__main__.Anything {{}}",
]


@pytest.mark.parametrize("tag", DANGEROUS_YAML)
def test_yaml_object_tags_are_refused_everywhere_and_never_run(tmp_path, tried, tag):
    marker = tmp_path / "pwned"
    payload = tag.format(marker=marker)
    spec_path = write_spec(tmp_path)
    good = spec_path.read_text()
    spec_path.write_text(good.replace("name: rel", f"name: {payload}"))
    with pytest.raises(SpecError):
        load_spec(spec_path)
    spec_path.write_text(good)
    base = tmp_path / "base.yaml"
    base_text = base.read_text()
    base.write_text(base_text.replace("lr: 0.05", f"lr: {payload}"))
    with pytest.raises(SpecError):
        load_spec(spec_path)
    base.write_text(base_text)
    slot = tmp_path / "slot.yaml"
    slot.write_text(f"train:\n  lr: {payload}\n")
    with pytest.raises(ConfigError):
        load_config(slot)
    with pytest.raises(ValueError):
        parse_directive(f"pin lr = {payload}")
    result = ucbx("status", str(spec_path), "--workdir", str(tmp_path / "runs"), "--set", f"train.lr={payload}")
    assert result.returncode != 0  # refused (one line: see the test below)
    assert not marker.exists(), f"{tag} ran"
    tried["object tags"] += 5


@pytest.mark.parametrize("value", ["!!python/object/apply:os.system ['true']", "[unclosed", "a: b: c"])
def test_a_set_value_that_is_not_yaml_is_one_line(tmp_path, value):
    spec_path = write_spec(tmp_path)
    result = ucbx("status", str(spec_path), "--workdir", str(tmp_path / "runs"), "--set", f"train.lr={value}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.endswith("\n") and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("ucbx: error: --set train.lr: "), result.stderr


METACHARACTERS = ";&|$`\\\"'<>(){}*?[]!#~%\n\t =-"
nasty = st.text(alphabet=st.sampled_from(list(METACHARACTERS) + list("abc/.é€")), min_size=1, max_size=24)


def wait_finished(launcher, journal: Journal, limit: float = 120) -> list:
    deadline = time.monotonic() + limit
    while journal.jobs(status=("queued", "running")) and time.monotonic() < deadline:
        time.sleep(0.1)
        launcher.refresh(journal)
    return journal.jobs()


@JOBS
@given(st.lists(nasty, min_size=1, max_size=4), nasty)
@example(
    ["; touch MARKER", "$(touch MARKER)", "`touch MARKER`", "| touch MARKER", "&& touch MARKER"],
    "a'b\"c $(touch MARKER);",
)
def test_shell_metacharacters_reach_the_trainer_as_plain_arguments(tmp_path_factory, tried, arguments, folder_name):
    assume(not any("{" in a and "}" in a for a in arguments + [folder_name]))
    root = tmp_path_factory.mktemp("shell")
    marker = root / "pwned"
    arguments = [a.replace("MARKER", str(marker)) for a in arguments]
    folder = (
        root / folder_name.replace("/", "_").replace("MARKER", "m").strip()[:40].lstrip(".-")
        if folder_name.replace("/", "_").strip().lstrip(".-")
        else root / "x"
    )
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "slot": {"width": 8},
                "fault": {"sleep": 0},
                "train": {"lr": 0.01, "momentum": 0.5, "batch": 16, "opt": arguments[0], "seed": 0},
            }
        )
    )
    journal = Journal(folder)
    launcher = make_launcher("local", {"grace_s": 1, "gpus": "none", "timeout_s": 60}, folder)
    command = ["{python}", str(TRAINER), "--config", "{config}", "--run-dir", "{run_dir}", "--", *arguments]
    launcher.submit(JobRequest(1, 1, 0, None, config, folder / "node_0001", command), journal)
    job = wait_finished(launcher, journal)[0]
    journal.close()
    assert job.status == "done", (job.reason, job.stderr_tail)
    received = json.loads((folder / "node_0001" / "argv.json").read_text())
    assert received == ["--config", str(config), "--run-dir", str(folder / "node_0001"), "--", *arguments]
    assert json.loads((folder / "node_0001" / "values.json").read_text())["opt"] == arguments[0]
    assert not marker.exists()
    tried["shell metacharacter jobs"] += 1


NASTY = ["; touch {m}", "$(touch {m})", "`touch {m}`", "a b", "'\"", "--run-dir", "*", "~", "\\n"]


@pytest.mark.parametrize("launcher", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_a_whole_exploration_in_a_nasty_folder_with_nasty_arguments(tmp_path, tried, launcher):
    if launcher == "slurm":
        from .test_training_faults import slurm_problem

        problem = slurm_problem()
        if problem is not None:
            if os.environ.get("UCBX_REQUIRE_SLURM") == "1":
                pytest.fail(problem)
            pytest.skip(problem)
    marker = tmp_path / "pwned"
    extra = [a.format(m=marker) for a in NASTY]
    command = ["{python}", str(TRAINER), "--config", "{config}", "--run-dir", "{run_dir}", "--", *extra]
    nasty_dir = tmp_path / "it's a $(touch pwned) folder; `x` & more"
    spec = write_spec(
        nasty_dir,
        budget=3,
        command=command,
        launcher=SLURM
        if launcher == "slurm"
        else "launcher:\n  kind: local\n  timeout_s: 60\n  grace_s: 1\n  gpus: none\n",
    )
    result = ucbx("run", str(spec), "--workdir", str(nasty_dir / "runs $(x)"), env=environment())
    assert result.returncode == 0, result.stdout + result.stderr
    check_exploration(nasty_dir / "runs $(x)", 3)
    for argv in (nasty_dir / "runs $(x)" / "iterations").glob("*/argv.json"):
        assert json.loads(argv.read_text())[-len(extra) :] == extra
    assert not marker.exists() and not (nasty_dir / "pwned").exists() and not (Path.cwd() / "pwned").exists()
    tried[f"nasty explorations ({launcher})"] += 1
