"""`ucbx check`: every problem in the files a person edits, with file and line.

Owns the checks of the analysis log (unreadable entries, broken lineage, Config values
the spec refuses), the working memory (malformed or pointless directives, a misspelt
Directives section, length) and the slot configs (unreadable YAML, values the spec
refuses). An error is something that changes what the agent does (an entry it cannot
read, a directive it ignores, a slot config it will not launch); a warning is worth a
look but changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from agent.folder import SLOT_CONFIG_RE, ExplorationFolder
from agent.review.folder import ExplorationFiles
from memory.directives import Directive
from memory.errors import ConfigError, Problem
from memory.working_memory import DIRECTIVES, read_memory
from slots.config import get_path, load_config, set_path, validate_config

ERROR, WARNING = "error", "warning"
MAX_MEMORY_LINES = 300
KEYED_KINDS = ("pin", "avoid", "bound", "try")
NODE_KINDS = ("prefer-parent", "freeze")


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    severity: str  # error | warning
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


def _from_problem(problem: Problem, path: Path) -> Finding:
    return Finding(Path(problem.path) if problem.path else path, problem.line, ERROR, problem.message)


# ---------------------------------------------------------------- the log


def check_log(files: ExplorationFiles) -> list[Finding]:
    findings = [_from_problem(p, files.log_path) for p in files.problems + files.tree.problems]
    if files.spec is None:
        return findings
    for run in files.runs:
        entry = run.entry
        for short, text in entry.config.items():
            parameter = files.space.get(short)
            if parameter is None:
                if short != "seed":
                    findings.append(
                        Finding(
                            files.log_path,
                            entry.line,
                            WARNING,
                            f"Iter {entry.iteration}: Config key {short!r} is not in the search "
                            "space; the agent ignores it",
                        )
                    )
            elif parameter.key not in run.record.params:
                findings.append(
                    Finding(
                        files.log_path,
                        entry.line,
                        ERROR,
                        f"Iter {entry.iteration}: Config {short}={text} is not a valid "
                        f"{parameter.kind}; the agent treats the value as unknown",
                    )
                )
        if entry.slot is not None and not 0 <= entry.slot < files.spec.n_slots:
            findings.append(
                Finding(
                    files.log_path,
                    entry.line,
                    ERROR,
                    f"Iter {entry.iteration}: slot_{entry.slot} does not exist in the spec "
                    f"(slots 0-{files.spec.n_slots - 1})",
                )
            )
    return findings


# ---------------------------------------------------------------- the memory


def _directive_finding(files: ExplorationFiles, directive: Directive) -> str | None:
    """Why the agent cannot act on a well-formed directive, or None."""
    if directive.kind in NODE_KINDS:
        if directive.node not in files.tree.nodes:
            return f"{directive.kind} {directive.node}: there is no node {directive.node} in the log"
        return None
    if files.spec is None:
        return None
    parameter = files.space.get(directive.key)
    if parameter is None:
        return f"{directive.kind} {directive.key}: not a search-space key or short alias"
    if directive.kind in ("pin", "try"):
        try:
            parameter.validate(directive.value)
        except ConfigError as error:
            return f"{directive.kind} {directive.key}: {error}"
    return None


def check_memory(files: ExplorationFiles, path: Path) -> list[Finding]:
    if not path.is_file():
        return []
    memory = read_memory(path)
    directives, problems = memory.directives()
    findings = [_from_problem(p, path) for p in problems]
    for directive in directives:
        reason = _directive_finding(files, directive)
        if reason:
            findings.append(Finding(path, directive.line, ERROR, f"directive ignored: {reason}"))
    for title, line in memory.header_lines.items():
        if title != DIRECTIVES and "directive" in title.lower():
            findings.append(
                Finding(
                    path,
                    line,
                    ERROR,
                    f"section '## {title}' is not '## {DIRECTIVES}': the agent reads no directives from it",
                )
            )
    length = len(path.read_text(encoding="utf-8").splitlines())
    if length > MAX_MEMORY_LINES:
        findings.append(
            Finding(
                path,
                MAX_MEMORY_LINES + 1,
                WARNING,
                f"{length} lines; the agent folds the oldest items to stay within {MAX_MEMORY_LINES}",
            )
        )
    return findings


# ---------------------------------------------------------------- slot configs


def key_line(text: str, dotted: str) -> int:
    """The line of ``dotted`` in YAML ``text`` (of its deepest existing section; 1 if none)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return 1
    line = 1
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((key, value) for key, value in node.value if key.value == part), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line


def _yaml_error_line(message: str) -> int:
    found = re.search(r"at line (\d+)", message)
    return int(found.group(1)) if found else 1


def check_slot_config(files: ExplorationFiles, path: Path) -> Finding | None:
    spec = files.spec
    slot = int(SLOT_CONFIG_RE.match(path.name).group(1))
    if not 0 <= slot < spec.n_slots:
        return Finding(path, 1, ERROR, f"slot {slot} does not exist in the spec (slots 0-{spec.n_slots - 1})")
    try:
        config = load_config(path)
        seed_key = spec.trainer.seed_key
        base = (
            set_path(spec.base, seed_key, get_path(config, seed_key))
            if seed_key and get_path(config, seed_key, None) is not None
            else spec.base
        )
        validate_config(config, base, spec.slots, slot, spec.space, spec.frozen)
    except ConfigError as error:
        message = str(error).removeprefix(f"{path}: ")
        line = (
            _yaml_error_line(message)
            if "not valid YAML" in message
            else key_line(path.read_text(encoding="utf-8"), message.split(":", 1)[0])
        )
        return Finding(path, line, ERROR, f"{message}; the agent will not launch this config")
    return None


def check_slots(files: ExplorationFiles) -> list[Finding]:
    if files.spec is None:
        return []
    paths = files.layout.slot_configs()
    return [finding for finding in (check_slot_config(files, path) for path in paths) if finding]


def check_all(files: ExplorationFiles) -> list[Finding]:
    """Every finding, file by file: the log, the memory, the slot configs."""
    memory = ExplorationFolder(files.folder, files.name).memory
    return check_log(files) + check_memory(files, memory) + check_slots(files)
