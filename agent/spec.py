"""The exploration spec (configs/*.yaml): loading, validation, and the `Spec` record.

A spec names the trainer and its base config, the slots, the search space, the frozen
keys, the objective, the exploration settings and the launcher (docs/ARCHITECTURE.md,
"The spec"). `load_spec` checks every value before anything runs: a bad spec raises
`SpecError` with one line naming the file, the key and the reason. Unknown keys are
refused, so a typo is never silently ignored. Paths inside a spec are relative to it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.playbook import PLAYBOOK_SUFFIXES, builtin_playbooks, load_playbook, playbook_path
from agent.validation import Reader, show
from memory.errors import ConfigError, SpecError
from slots.config import get_path, set_path
from slots.space import PARAMETER_KINDS, Parameter, SearchSpace, SlotSet
from ucb.rewards import OPERATORS, TERM_KINDS, Band, Guard, Objective, RewardTerm

LAUNCHER_KINDS = ("local", "slurm")
SLURM_KEYS = (
    "partition",
    "gpus_per_job",
    "cpus_per_job",
    "mem_gb",
    "time_min",
    "extra_args",
    "poll_s",
    "poll_max_s",
    "accounting",
)


@dataclass(frozen=True)
class TrainerSpec:
    command: tuple[str, ...]  # {python}, {config}, {run_dir} left for each job; {spec_dir} resolved
    base_config: Path
    metrics_file: str = "analysis.log"
    describe: str = ""  # trainers/<describe>/describe.py builds the Visual line
    seed_key: str = ""  # where a replicate's seed goes
    source: Path | None = None  # the trainer's code, for its git version (default: found from the command)


PRUNING_RULES = ("none", "median", "asha")
PRUNING_KEYS = ("rule", "min_fraction", "min_runs", "eta", "metric", "goal")
GOALS = ("maximize", "minimize")


@dataclass(frozen=True)
class PruningSettings:
    """``exploration.pruning``: whether and how a running job is stopped early (agent/pruning.py)."""

    rule: str = "none"  # none | median | asha
    min_fraction: float = 0.25  # median: never before this fraction done; asha: the first rung
    min_runs: int = 3  # earlier runs of the slot needed at a fraction before anything is stopped there
    eta: float = 3.0  # asha: the top 1/eta of a rung goes on; rungs at min_fraction * eta**k
    metric: str = ""  # judge this progress metric instead of the objective's reward of a progress line
    goal: str = "maximize"  # which way ``metric`` is better


@dataclass(frozen=True)
class ExplorationSettings:
    ucb_c: float = 1.414
    n_iter_block: int = 8
    budget: int = 48  # iterations (log entries) in all
    replicates: int = 1  # extra seeds a node gets before it is reported best
    seed: int = 0  # the agent's own random choices
    playbook: str = ""  # a built-in name (agent/playbooks/<name>.yaml) or a file's absolute path
    poll_s: float = 2.0  # how often the daemon looks at running jobs
    max_changes: int = 1  # parameters one proposal of the acquisition engine may change at once
    pruning: PruningSettings = PruningSettings()


@dataclass(frozen=True)
class LauncherSpec:
    kind: str = "local"
    timeout_s: float = 3600.0
    threads_per_job: int | None = None  # None: 1 locally, cpus_per_job under SLURM
    gpus: str | tuple[int, ...] = "auto"
    grace_s: float = 10.0  # SIGTERM to SIGKILL when a job is stopped
    max_retries: int = 2  # resubmissions of infrastructure failures
    slurm: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    path: Path
    name: str
    trainer: TrainerSpec
    slots: SlotSet
    space: SearchSpace
    frozen: tuple[str, ...]
    objective: Objective
    exploration: ExplorationSettings
    launcher: LauncherSpec
    base: dict[str, Any]  # the base config, as read
    raw: dict[str, Any]  # the spec as read (after overrides), for the folder's copy

    def base_params(self) -> dict[str, Any]:
        """The base config's value of every searched parameter (the root of the tree)."""
        return {p.key: get_path(self.base, p.key) for p in self.space}

    def base_seed(self) -> int | None:
        """The base config's seed, None when the trainer has no seed key."""
        return get_path(self.base, self.trainer.seed_key, None) if self.trainer.seed_key else None

    @property
    def n_slots(self) -> int:
        return len(self.slots.values)


def apply_overrides(raw: dict, overrides: dict[str, Any]) -> dict:
    """The raw spec with dotted keys set (`--set trainer.base_config=metabolism/tiny.yaml`)."""
    for dotted, value in overrides.items():
        try:
            raw = set_path(raw, dotted, value)
        except ConfigError as error:
            raise SpecError(f"--set {error}") from None
    return raw


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> Spec:
    """Read and validate a spec; raise SpecError naming file, key and reason."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SpecError(f"{path}: cannot read spec ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None
    reader = Reader(path)
    if isinstance(raw, dict):
        raw = apply_overrides(raw, overrides or {})
    top = reader.mapping(
        "",
        raw,
        ("name", "trainer", "slots", "search_space", "objective"),
        ("frozen", "exploration", "launcher", "description"),
    )
    name = reader.text("name", top["name"])
    if not name.replace("_", "").replace("-", "").isalnum():
        raise reader.fail("name", f"must be letters, digits, '_' or '-', got {name!r}")
    trainer = _trainer(reader, top["trainer"])
    base = _base_config(reader, trainer.base_config)
    slots = _slots(reader, top["slots"], base)
    space = _space(reader, top["search_space"], base, slots)
    frozen = _frozen(reader, top.get("frozen", []), space)
    exploration = _exploration(reader, top.get("exploration", {}))
    if trainer.seed_key:
        _require_in_base(reader, "trainer.seed_key", trainer.seed_key, base)
    elif exploration.replicates:
        raise reader.fail("exploration.replicates", "needs trainer.seed_key (where a replicate's seed goes)")
    return Spec(
        path=path,
        name=name,
        trainer=trainer,
        slots=slots,
        space=space,
        frozen=frozen,
        objective=_objective(reader, top["objective"]),
        exploration=exploration,
        launcher=_launcher(reader, top.get("launcher", {})),
        base=base,
        raw=raw,
    )


def _trainer(reader: Reader, value: Any) -> TrainerSpec:
    section = reader.mapping(
        "trainer", value, ("command", "base_config"), ("metrics_file", "describe", "seed_key", "source")
    )
    command = section["command"]
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise reader.fail("trainer.command", "must be a non-empty list of strings")
    joined = " ".join(command)
    for placeholder in ("{config}", "{run_dir}"):
        if placeholder not in joined:
            raise reader.fail("trainer.command", f"must contain {placeholder}")
    base_config = reader.path.parent / reader.text("trainer.base_config", section["base_config"])
    if not base_config.is_file():
        raise reader.fail("trainer.base_config", f"file not found: {base_config}")
    describe = reader.text("trainer.describe", section["describe"]) if "describe" in section else ""
    if describe and not _module_exists(f"trainers.{describe}.describe"):
        raise reader.fail("trainer.describe", f"no module trainers/{describe}/describe.py")
    source = None
    if "source" in section:
        source = reader.path.parent / reader.text("trainer.source", section["source"])
        if not source.exists():
            raise reader.fail("trainer.source", f"not found: {source}")
    spec_dir = str(reader.path.parent.resolve())
    return TrainerSpec(
        command=tuple(argument.replace("{spec_dir}", spec_dir) for argument in command),
        base_config=base_config,
        metrics_file=reader.text("trainer.metrics_file", section.get("metrics_file", "analysis.log")),
        describe=describe,
        seed_key=reader.text("trainer.seed_key", section["seed_key"]) if "seed_key" in section else "",
        source=source,
    )


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _base_config(reader: Reader, path: Path) -> dict:
    try:
        base = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise reader.fail("trainer.base_config", f"{path} is not valid YAML ({' '.join(str(error).split())})") from None
    if not isinstance(base, dict):
        raise reader.fail("trainer.base_config", f"{path} must hold a mapping")
    return base


def _slots(reader: Reader, value: Any, base: dict) -> SlotSet:
    section = reader.mapping("slots", value, ("key", "values"))
    key = reader.text("slots.key", section["key"])
    values = section["values"]
    if not isinstance(values, list) or not values:
        raise reader.fail("slots.values", "must be a non-empty list")
    if len(set(map(repr, values))) != len(values):
        raise reader.fail("slots.values", f"must be distinct, got {values}")
    _require_in_base(reader, "slots.key", key, base)
    return SlotSet(key=key, values=tuple(values))


def _require_in_base(reader: Reader, key: str, dotted: str, base: dict) -> Any:
    try:
        return get_path(base, dotted)
    except KeyError:
        raise reader.fail(
            key, f"'{dotted}' is not set in the base config (the agent needs its starting value)"
        ) from None


def _space(reader: Reader, value: Any, base: dict, slots: SlotSet) -> SearchSpace:
    if not isinstance(value, dict) or not value:
        raise reader.fail("search_space", "must be a non-empty mapping of dotted config keys")
    parameters = []
    for dotted, entry in value.items():
        key = f"search_space.{dotted}"
        if dotted == slots.key:
            raise reader.fail(key, "is the slots' fixed key; it cannot be searched")
        parameters.append(_parameter(reader, key, dotted, entry))
        try:
            parameters[-1].validate(_require_in_base(reader, key, dotted, base))
        except ConfigError as error:
            raise reader.fail(key, f"base config value refused: {error}") from None
    shorts = [p.short for p in parameters]
    for short in shorts:
        if shorts.count(short) > 1:
            raise reader.fail("search_space", f"short alias {short!r} is used twice")
    return SearchSpace(tuple(parameters))


def _parameter(reader: Reader, key: str, dotted: str, entry: Any) -> Parameter:
    entry = reader.mapping(
        key, entry, ("kind", "short"), ("low", "high", "log", "choices", "priority", "code_strategy")
    )
    kind = reader.text(f"{key}.kind", entry["kind"], PARAMETER_KINDS)
    short = reader.text(f"{key}.short", entry["short"])
    log = reader.boolean(f"{key}.log", entry.get("log", False))
    low = high = None
    choices: tuple = ()
    if kind in ("float", "int"):
        for bound in ("low", "high"):
            if bound not in entry:
                raise reader.fail(f"{key}.{bound}", f"missing (a {kind} parameter needs bounds)")
        low = reader.number(f"{key}.low", entry["low"], integer=kind == "int")
        high = reader.number(f"{key}.high", entry["high"], integer=kind == "int", above=low)
        if log and low <= 0:
            raise reader.fail(f"{key}.low", f"must be > 0 for a log-scaled parameter, got {low}")
    elif log:
        raise reader.fail(f"{key}.log", f"only float and int parameters can be log-scaled, not {kind}")
    if kind == "choice":
        choices = entry.get("choices")
        if not isinstance(choices, list) or len(choices) < 2:
            raise reader.fail(f"{key}.choices", "must list at least two values")
        choices = tuple(choices)
    elif "choices" in entry:
        raise reader.fail(f"{key}.choices", f"only a choice parameter has choices, not {kind}")
    return Parameter(
        key=dotted,
        kind=kind,
        short=short,
        low=low,
        high=high,
        log=log,
        choices=choices,
        priority=int(reader.number(f"{key}.priority", entry.get("priority", 100), integer=True, minimum=1)),
        code_strategy=reader.boolean(f"{key}.code_strategy", entry.get("code_strategy", False)),
    )


def _frozen(reader: Reader, value: Any, space: SearchSpace) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(k, str) and k for k in value):
        raise reader.fail("frozen", "must be a list of dotted config keys")
    for frozen_key in value:
        for parameter in space:
            if parameter.key == frozen_key or parameter.key.startswith(frozen_key + "."):
                raise reader.fail("frozen", f"'{frozen_key}' freezes the searched key {parameter.key}")
    return tuple(value)


def _objective(reader: Reader, value: Any) -> Objective:
    section = reader.mapping("objective", value, ("primary", "terms"), ("guards", "bands"))
    primary = reader.text("objective.primary", section["primary"])
    terms_raw = section["terms"]
    if not isinstance(terms_raw, list) or not terms_raw:
        raise reader.fail("objective.terms", "must be a non-empty list")
    terms = tuple(_term(reader, f"objective.terms[{i}]", t) for i, t in enumerate(terms_raw))
    guards = tuple(_guard(reader, f"objective.guards[{i}]", g) for i, g in enumerate(_list(reader, section, "guards")))
    bands = tuple(_band(reader, f"objective.bands[{i}]", b) for i, b in enumerate(_list(reader, section, "bands")))
    return Objective(primary=primary, terms=terms, guards=guards, bands=bands)


def _list(reader: Reader, section: dict, name: str) -> list:
    value = section.get(name, [])
    if not isinstance(value, list):
        raise reader.fail(f"objective.{name}", "must be a list")
    return value


def _term(reader: Reader, key: str, value: Any) -> RewardTerm:
    entry = reader.mapping(key, value, ("metric", "kind"), ("target", "tolerance", "low", "high", "weight"))
    kind = reader.text(f"{key}.kind", entry["kind"], TERM_KINDS)
    numbers = {
        name: reader.number(f"{key}.{name}", entry[name])
        for name in ("target", "tolerance", "low", "high", "weight")
        if name in entry
    }
    if kind == "ratio" and numbers.get("target", 1.0) <= 0:
        raise reader.fail(f"{key}.target", "a ratio's target must be > 0")
    if kind == "ratio" and numbers.get("tolerance", 10.0) <= 1:
        raise reader.fail(f"{key}.tolerance", "must be > 1 (the factor at which the score reaches 0)")
    if kind != "ratio" and numbers.get("high", 1.0) <= numbers.get("low", 0.0):
        raise reader.fail(f"{key}.high", "must be above low")
    if numbers.get("weight", 1.0) <= 0:
        raise reader.fail(f"{key}.weight", "must be > 0")
    return RewardTerm(metric=reader.text(f"{key}.metric", entry["metric"]), kind=kind, **numbers)


def _guard(reader: Reader, key: str, value: Any) -> Guard:
    entry = reader.mapping(key, value, ("metric", "op", "value"))
    return Guard(
        metric=reader.text(f"{key}.metric", entry["metric"]),
        op=reader.text(f"{key}.op", entry["op"], tuple(OPERATORS)),
        value=float(reader.number(f"{key}.value", entry["value"])),
    )


def _band(reader: Reader, key: str, value: Any) -> Band:
    entry = reader.mapping(key, value, ("label", "low", "high"))
    low = reader.number(f"{key}.low", entry["low"])
    return Band(
        label=reader.text(f"{key}.label", entry["label"]),
        low=float(low),
        high=float(reader.number(f"{key}.high", entry["high"], above=low)),
    )


def _exploration(reader: Reader, value: Any) -> ExplorationSettings:
    section = reader.mapping(
        "exploration",
        value,
        (),
        ("ucb_c", "n_iter_block", "budget", "replicates", "seed", "playbook", "poll_s", "max_changes", "pruning"),
    )
    playbook = ""
    if "playbook" in section:
        playbook = reader.text("exploration.playbook", section["playbook"])
        path = playbook_path(playbook, reader.path.parent)
        if path is None:
            known = ", ".join(builtin_playbooks())
            raise reader.fail(
                "exploration.playbook", f"no playbook {playbook!r} (a file beside the spec, or one of: {known})"
            )
        if playbook.endswith(PLAYBOOK_SUFFIXES):
            playbook = str(path)
            load_playbook(playbook)  # a bad playbook stops the spec, naming its file and key
    defaults = ExplorationSettings()
    return ExplorationSettings(
        ucb_c=float(reader.number("exploration.ucb_c", section.get("ucb_c", defaults.ucb_c), minimum=0)),
        n_iter_block=reader.number(
            "exploration.n_iter_block", section.get("n_iter_block", defaults.n_iter_block), integer=True, minimum=1
        ),
        budget=reader.number("exploration.budget", section.get("budget", defaults.budget), integer=True, minimum=1),
        replicates=reader.number(
            "exploration.replicates", section.get("replicates", defaults.replicates), integer=True, minimum=0
        ),
        seed=reader.number("exploration.seed", section.get("seed", defaults.seed), integer=True),
        playbook=playbook,
        poll_s=float(reader.number("exploration.poll_s", section.get("poll_s", defaults.poll_s), above=0)),
        max_changes=reader.number(
            "exploration.max_changes", section.get("max_changes", defaults.max_changes), integer=True, minimum=1
        ),
        pruning=_pruning(reader, section.get("pruning", "none")),
    )


def _pruning(reader: Reader, value: Any) -> PruningSettings:
    """``exploration.pruning``: a rule's name, or a mapping with ``rule`` and its settings."""
    key = "exploration.pruning"
    if isinstance(value, str):
        return PruningSettings(rule=reader.text(key, value, PRUNING_RULES))
    section = reader.mapping(key, value, ("rule",), PRUNING_KEYS[1:])
    defaults = PruningSettings()
    min_fraction = reader.number(f"{key}.min_fraction", section.get("min_fraction", defaults.min_fraction), above=0)
    if min_fraction >= 1:
        raise reader.fail(f"{key}.min_fraction", f"must be < 1 (a fraction of the run), got {min_fraction}")
    metric = reader.text(f"{key}.metric", section["metric"]) if "metric" in section else ""
    if "goal" in section and not metric:
        raise reader.fail(f"{key}.goal", "is only read with pruning.metric (the objective's reward is maximized)")
    if metric and "goal" not in section:
        raise reader.fail(f"{key}.goal", f"missing: say whether {metric} is better high (maximize) or low (minimize)")
    return PruningSettings(
        rule=reader.text(f"{key}.rule", section["rule"], PRUNING_RULES),
        min_fraction=float(min_fraction),
        min_runs=reader.number(f"{key}.min_runs", section.get("min_runs", defaults.min_runs), integer=True, minimum=1),
        eta=float(reader.number(f"{key}.eta", section.get("eta", defaults.eta), above=1)),
        metric=metric,
        goal=reader.text(f"{key}.goal", section["goal"], GOALS) if metric else defaults.goal,
    )


def _optional_threads(reader: Reader, value: Any) -> int | None:
    if value is None:
        return None
    return reader.number("launcher.threads_per_job", value, integer=True, minimum=1)


def _launcher(reader: Reader, value: Any) -> LauncherSpec:
    section = reader.mapping(
        "launcher", value, (), ("kind", "timeout_s", "threads_per_job", "gpus", "grace_s", "max_retries") + SLURM_KEYS
    )
    kind = reader.text("launcher.kind", section.get("kind", "local"), LAUNCHER_KINDS)
    gpus = section.get("gpus", "auto")
    if isinstance(gpus, list):
        if not all(isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in gpus):
            raise reader.fail("launcher.gpus", f"must be auto, none or a list of GPU indices, got {gpus!r}")
        gpus = tuple(gpus)
    elif gpus not in ("auto", "none"):
        raise reader.fail("launcher.gpus", f"must be auto, none or a list of GPU indices, got {show(gpus)}")
    slurm = {key: section[key] for key in SLURM_KEYS if key in section}
    if slurm and kind != "slurm":
        raise reader.fail(f"launcher.{next(iter(slurm))}", "is a SLURM setting but launcher.kind is local")
    return LauncherSpec(
        kind=kind,
        timeout_s=float(reader.number("launcher.timeout_s", section.get("timeout_s", 3600), above=0)),
        threads_per_job=_optional_threads(reader, section.get("threads_per_job")),
        gpus=gpus,
        slurm=slurm,
        grace_s=float(reader.number("launcher.grace_s", section.get("grace_s", 10.0), minimum=0)),
        max_retries=reader.number("launcher.max_retries", section.get("max_retries", 2), integer=True, minimum=0),
    )
