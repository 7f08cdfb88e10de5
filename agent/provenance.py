"""Provenance: the exploration folder is a git repository, one commit per iteration.

Each commit holds the log, the memory, the scores and the config that ran, with the
entry's first line and its mutation as the message. `trainer_version` says which code
trained a run: the commit of the trainer's git checkout, with ``+dirty`` when its
source has uncommitted changes ("" when the trainer is not in a git checkout).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import git

from agent.folder import GIT_IGNORED
from agent.spec import Spec
from memory.crash import crash_point
from memory.errors import UcbxError

AUTHOR = git.Actor("ucbx", "ucbx@localhost")
INIT_STAGING = ".git-init.tmp"


class Provenance:
    """The exploration folder's repository (created on first use).

    Opened under the folder's lock, so no other ucbx uses the repository: what a killed
    ucbx left is mended here. The repository is made in a temporary folder and renamed
    into place (a kill during `git init` leaves no half repository), the folder's first
    commit is made if it is missing, and git's lock files left by a kill during a commit
    are removed (git refuses to write while they exist).
    """

    def __init__(self, folder: Path):
        self.folder = folder
        shutil.rmtree(folder / INIT_STAGING, ignore_errors=True)
        if not (folder / ".git").exists():
            _init_repository(folder)
        for stale in [*(folder / ".git").glob("*.lock"), *(folder / ".git" / "refs").rglob("*.lock")]:
            stale.unlink()
        try:
            self.repo = git.Repo(folder)
        except git.InvalidGitRepositoryError:
            raise UcbxError(
                f"{folder / '.git'}: not a git repository ucbx can use; move it aside "
                f"(mv {folder / '.git'} {folder / '.git'}.broken) and start again: a new "
                "repository is made, the next commit holds every file"
            ) from None
        if not self.repo.head.is_valid():
            (folder / ".gitignore").write_text("\n".join(GIT_IGNORED) + "\n", encoding="utf-8")
            self.commit([folder / ".gitignore"], "ucbx: exploration folder")

    def commit(self, paths: list[Path], message: str) -> str:
        """Stage ``paths`` (files or folders inside the folder) and commit; the new commit's hexsha.

        Called once per written entry. Nothing staged still makes a commit, so every
        iteration has exactly one.
        """
        existing = [str(Path(p).resolve().relative_to(self.folder.resolve())) for p in paths if Path(p).exists()]
        if existing:
            self.repo.git.add("--", *existing)
        crash_point("git.after-add")
        return self.repo.index.commit(message, author=AUTHOR, committer=AUTHOR).hexsha

    def iteration_commits(self) -> int:
        return sum(1 for c in self.repo.iter_commits() if c.message.startswith("Iter "))


def _init_repository(folder: Path) -> None:
    """`git init` in a temporary folder, then its `.git` renamed into ``folder`` in one step."""
    staging = folder / INIT_STAGING
    git.Repo.init(staging)
    os.replace(staging / ".git", folder / ".git")
    shutil.rmtree(staging)


def trainer_source(spec: Spec) -> Path | None:
    """Where the trainer's code lives: ``trainer.source``, the ``-m`` module's package, or a script."""
    if spec.trainer.source is not None:
        return spec.trainer.source
    command = list(spec.trainer.command)
    if "-m" in command and command.index("-m") + 1 < len(command):
        try:
            found = importlib.util.find_spec(command[command.index("-m") + 1])
        except ImportError:
            found = None
        if found is not None and found.submodule_search_locations:
            return Path(list(found.submodule_search_locations)[0])
        if found is not None and found.origin:
            return Path(found.origin)
    scripts = [
        folder / argument
        for argument in command
        if argument.endswith(".py")
        for folder in (spec.path.parent, Path.cwd())
    ]
    return next((script for script in scripts if script.is_file()), None)


def trainer_version(spec: Spec) -> str:
    """``<commit>`` or ``<commit>+dirty`` of the trainer's checkout; "" outside git."""
    source = trainer_source(spec)
    if source is None:
        return ""
    try:
        repo = git.Repo(source if source.is_dir() else source.parent, search_parent_directories=True)
        commit = repo.head.commit.hexsha[:12]
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return ""
    relative = os.path.relpath(source.resolve(), Path(repo.working_tree_dir).resolve())
    dirty = repo.is_dirty(untracked_files=True, path=relative)
    return f"{commit}+dirty" if dirty else commit
