"""The exploration folder's layout: every path and file name, in one place.

    runs/<name>/
      <name>_analysis.md        the append-only log (memory/notebook.py)
      <name>_memory.md          the working memory (memory/working_memory.py)
      <name>_ucb_scores.txt     PUCT scores (ucb/scores.py)
      spec.yaml                 the spec as run, its base config beside it as base_config.yaml
      slots/slot_SS.yaml        the config slot SS runs next; slot_SS.pending.json until launched
      iterations/node_NNNN/     one run: config.yaml, analysis.log, plots, stdout/stderr, exit status,
                                progress.jsonl (what the trainer said while it trained: memory/progress.py)
      state.db                  the job journal (slots/journal.py owns the name)
      .ucbx.lock                one ucbx at a time (slots/lock.py owns the name)
      .git                      one commit per iteration (agent/provenance.py)

`ExplorationFolder` is the one owner of this layout: the driver, `ucbx status` and
every review command build their paths through it, and no other module spells them
(tests/test_agent_folder.py checks). It reads and writes nothing itself, except the
folder lock it hands out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.spec import Spec, load_spec
from memory.errors import UcbxError
from memory.progress import PROGRESS_NAME
from slots.journal import JOURNAL_NAME
from slots.lock import FolderLock

LOG_SUFFIX = "_analysis.md"
MEMORY_SUFFIX = "_memory.md"
SCORES_SUFFIX = "_ucb_scores.txt"
SPEC_COPY = "spec.yaml"
BASE_COPY = "base_config.yaml"
SLOTS_DIR = "slots"
RUNS_DIR = "iterations"
RUN_CONFIG = "config.yaml"
PENDING_SUFFIX = ".pending.json"
DEFAULT_ROOT = Path("runs")
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"  # ucbx's own specs and presets
SLOT_CONFIG_RE = re.compile(r"^slot_(\d+)\.yaml$")
# what the folder's git repository leaves out: the journal, the lock, temporary files, and
# the heavy or repeated parts of run folders (checkpoints, data, the trainer's plot series)
GIT_IGNORED = (
    JOURNAL_NAME,
    f"{JOURNAL_NAME}-wal",
    f"{JOURNAL_NAME}-shm",
    ".ucbx.lock",
    "*.tmp",
    f"{RUNS_DIR}/*/attempt_*/",
    f"{RUNS_DIR}/*/*.pt",
    f"{RUNS_DIR}/*/*.npz",
    f"{RUNS_DIR}/*/tmp_training/",
)


@dataclass(frozen=True)
class ExplorationFolder:
    """Where everything of exploration ``name`` lives under ``root``."""

    root: Path
    name: str

    @classmethod
    def default(cls, name: str) -> ExplorationFolder:
        """``runs/<name>`` under the current folder."""
        return cls(DEFAULT_ROOT / name, name)

    @classmethod
    def discover(cls, root: Path) -> ExplorationFolder:
        """The exploration in ``root`` named by its only ``*_analysis.md`` (or its spec copy)."""
        logs = sorted(root.glob(f"*{LOG_SUFFIX}"))
        if len(logs) == 1:
            return cls(root, logs[0].name.removesuffix(LOG_SUFFIX))
        what = "no" if not logs else f"{len(logs)} ({', '.join(p.name for p in logs)})"
        raise UcbxError(f"{root}: {what} *{LOG_SUFFIX} files; say which with --log FILE")

    @classmethod
    def of_log(cls, log: Path) -> ExplorationFolder:
        """The folder of a log file, named after it (``x_analysis.md`` -> ``x``)."""
        return cls(log.parent, log.name.removesuffix(LOG_SUFFIX))

    # ------------------------------------------------------------ the agent's files

    @property
    def log(self) -> Path:
        return self.root / f"{self.name}{LOG_SUFFIX}"

    @property
    def memory(self) -> Path:
        return self.root / f"{self.name}{MEMORY_SUFFIX}"

    @property
    def scores(self) -> Path:
        return self.root / f"{self.name}{SCORES_SUFFIX}"

    @property
    def spec_copy(self) -> Path:
        return self.root / SPEC_COPY

    @property
    def base_copy(self) -> Path:
        return self.root / BASE_COPY

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL_NAME

    def lock(self) -> FolderLock:
        return FolderLock(self.root)

    def load_spec_copy(self, overrides: dict[str, Any] | None = None) -> Spec | None:
        """The spec copy the driver keeps here (None if there is none).

        Its ``trainer.base_config`` is looked up beside the copy, then in ucbx's own ``configs/``.
        """
        return load_spec_copy(self.root, overrides)

    def is_exploration(self) -> bool:
        """True when the folder holds a journal or this exploration's log."""
        return self.journal.exists() or self.log.exists()

    # ------------------------------------------------------------ slots

    @property
    def slots_dir(self) -> Path:
        return self.root / SLOTS_DIR

    def slot_config(self, slot: int) -> Path:
        return self.slots_dir / f"slot_{slot:02d}.yaml"

    def pending(self, slot: int) -> Path:
        return self.slots_dir / f"slot_{slot:02d}{PENDING_SUFFIX}"

    def pending_files(self) -> list[Path]:
        """Every pending proposal's file, by slot."""
        return sorted(self.slots_dir.glob(f"slot_*{PENDING_SUFFIX}"))

    def slot_configs(self) -> list[Path]:
        """Every ``slot_SS.yaml`` in the slots folder, by name."""
        if not self.slots_dir.is_dir():
            return []
        return sorted(p for p in self.slots_dir.iterdir() if SLOT_CONFIG_RE.match(p.name))

    # ------------------------------------------------------------ runs

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

    def run_dir(self, node_id: int) -> Path:
        return self.root / self.run_relative(node_id)

    def run_config(self, node_id: int) -> Path:
        return self.run_dir(node_id) / RUN_CONFIG

    def progress(self, node_id: int) -> Path:
        """The run's progress file (memory/progress.py's protocol)."""
        return self.run_dir(node_id) / PROGRESS_NAME

    @staticmethod
    def run_relative(node_id: int) -> str:
        """The run folder relative to the root, as git names it."""
        return f"{RUNS_DIR}/node_{node_id:04d}"

    @staticmethod
    def run_config_relative(node_id: int) -> str:
        return f"{RUNS_DIR}/node_{node_id:04d}/{RUN_CONFIG}"


def load_spec_copy(root: Path, overrides: dict[str, Any] | None = None) -> Spec | None:
    """`ExplorationFolder.load_spec_copy` of the folder ``root`` (whose name is not known yet)."""
    copy = root / SPEC_COPY
    if not copy.is_file():
        return None
    try:
        raw = yaml.safe_load(copy.read_text(encoding="utf-8")) or {}
        base = str((raw.get("trainer") or {}).get("base_config", ""))
    except (yaml.YAMLError, AttributeError):
        return load_spec(copy, overrides)  # says what is wrong with it, in one line
    for place in (root, CONFIGS_DIR):
        if base and (place / base).is_file():
            return load_spec(copy, {"trainer.base_config": str((place / base).resolve()), **(overrides or {})})
    raise UcbxError(
        f"{copy}: its base config {base!r} is neither beside it nor in {CONFIGS_DIR}; give the original spec instead"
    )


def locate(target: Path, workdir: Path | None, overrides: dict[str, Any]) -> tuple[Spec, ExplorationFolder]:
    """What ``ucbx run|step|status TARGET`` names: a spec (its folder is ``--workdir`` or ``runs/<name>``)
    or an exploration folder (run with the spec copy it keeps)."""
    if target.is_dir():
        spec = load_spec_copy(target, overrides)
        if spec is None:
            raise UcbxError(f"{target}: a folder without {SPEC_COPY}; give the exploration's spec file instead")
        return spec, ExplorationFolder(target, spec.name)
    spec = load_spec(target, overrides)
    return spec, ExplorationFolder(workdir, spec.name) if workdir else ExplorationFolder.default(spec.name)
