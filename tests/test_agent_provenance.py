"""agent/provenance.py: the folder's git repository opens whatever a killed ucbx left of it.

Real git on real folders. The states planted here are what SIGKILL leaves at each step
of making the repository or a commit (the restart suite kills a real daemon at random
moments on top of this).
"""

from __future__ import annotations

import git
import pytest

from agent.provenance import INIT_STAGING, Provenance
from memory.errors import UcbxError


def commits(folder) -> list[str]:
    return [c.message.strip() for c in git.Repo(folder).iter_commits()]


def test_a_new_folder_gets_a_repository_with_its_first_commit(tmp_path):
    Provenance(tmp_path)
    assert commits(tmp_path) == ["ucbx: exploration folder"]
    assert "state.db" in (tmp_path / ".gitignore").read_text()
    assert not (tmp_path / INIT_STAGING).exists()


def test_a_kill_during_git_init_leaves_only_the_staging_folder_which_is_redone(tmp_path):
    git.Repo.init(tmp_path / INIT_STAGING)  # killed before the rename: no .git in the folder
    (tmp_path / INIT_STAGING / ".git" / "HEAD").unlink()
    Provenance(tmp_path)
    assert commits(tmp_path) == ["ucbx: exploration folder"]
    assert not (tmp_path / INIT_STAGING).exists()


def test_a_kill_before_the_first_commit_gets_the_first_commit_made(tmp_path):
    git.Repo.init(tmp_path)  # renamed into place, then killed
    (tmp_path / INIT_STAGING).mkdir()  # and the staging folder not yet removed
    Provenance(tmp_path)
    assert commits(tmp_path) == ["ucbx: exploration folder"]
    assert not (tmp_path / INIT_STAGING).exists()


def test_lock_files_left_by_a_kill_during_a_commit_are_removed(tmp_path):
    provenance = Provenance(tmp_path)
    (tmp_path / "analysis.md").write_text("## Iter 1: partial\n")
    branch = git.Repo(tmp_path).active_branch.name
    for lock in (".git/index.lock", ".git/HEAD.lock", f".git/refs/heads/{branch}.lock"):
        (tmp_path / lock).write_text("")  # git add / the ref update killed midway
    with pytest.raises(git.GitCommandError):
        provenance.commit([tmp_path / "analysis.md"], "Iter 1: partial")
    Provenance(tmp_path).commit([tmp_path / "analysis.md"], "Iter 1: partial")
    assert commits(tmp_path) == ["Iter 1: partial", "ucbx: exploration folder"]
    assert not list((tmp_path / ".git").rglob("*.lock"))


def test_a_broken_repository_is_one_line_naming_the_recovery(tmp_path):
    git.Repo.init(tmp_path)
    for part in ("objects", "refs"):  # what an older ucbx killed in `git init` left
        (tmp_path / ".git" / part).rename(tmp_path / f"gone-{part}")
    with pytest.raises(UcbxError, match=r"\.git: not a git repository ucbx can use; move it aside \(mv "):
        Provenance(tmp_path)
