"""`<name>_memory.md`: the agent's working memory, read and edited by people too.

Owns the file's sections and its bound. Sections are ``## Title`` blocks, kept in file
order. The agent rewrites the known sections (Established Principles, Strategy
Outcomes, Open Questions, Previous Block Summary, Current Block); the ``## Directives``
section belongs to the person and, like any section the agent does not know, is
written back byte for byte (the text under a second ``## Directives`` header is read
with the first's, reported, and written back under it: never dropped). The file is
rewritten atomically and kept to about 300 lines: when longer, the oldest items
(bullets, numbered items, table rows) of the longest known sections are folded into
one count line such as
``- (12 older principles summarised: see analysis.md iters 1-40)`` (a table row when
the items are table rows); no line is cut.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from memory.atomic import write_text_atomic
from memory.directives import Directive, parse_directives
from memory.errors import ParseError, Problem

DIRECTIVES = "Directives"
KNOWN_SECTIONS = (
    "Established Principles",
    "Strategy Outcomes",
    "Open Questions",
    "Previous Block Summary",
    "Current Block",
)
SECTION_ORDER = (*KNOWN_SECTIONS, DIRECTIVES)
ITEM_NOUNS = {
    "Established Principles": "principles",
    "Strategy Outcomes": "outcomes",
    "Open Questions": "questions",
    "Previous Block Summary": "summary items",
    "Current Block": "block notes",
}
DIRECTIVES_HELP = """<!-- Directives are yours: ucbx reads them and never rewrites this section.
One per bullet (KEY is a config key or its short alias; values are YAML):
  pin KEY = VALUE         always use this value
  avoid KEY OP VALUE      never propose KEY OP VALUE (OP: < <= > >= ==)
  bound KEY LOW HIGH      keep KEY within [LOW, HIGH]
  try KEY = VALUE         propose this value soon
  prefer-parent N         branch from node N
  freeze N                no more children from node N's subtree
Example: "- avoid lr_node_homeo > 0.5". A malformed line is reported and ignored. -->
"""

HEADER_RE = re.compile(r"^##\s+(.+?)\s*#*\s*$")
ITEM_START_RE = re.compile(r"^(?:[-*+]\s|\d+[.)]\s|\|)")
TABLE_RULE_RE = re.compile(r"^\|[\s:|-]+\|?\s*$")
SUMMARY_RE = re.compile(r"^(?:- |\| )\((\d+) older .*? summarised(?:: see .*? iters (\d+)-(\d+))?[^)]*\)(?: \|)?\s*$")
ITER_RE = re.compile(r"\bIters?\.?\s+(\d+)(?:\s*[-–]\s*(\d+))?", re.IGNORECASE)


def canonical_title(title: str) -> str:
    """A known section's canonical title (case-insensitive match), else ``title`` as written."""
    for known in SECTION_ORDER:
        if title.strip().lower() == known.lower():
            return known
    return title.strip()


@dataclass
class WorkingMemory:
    """The memory file: text before the first section, then sections in order.

    ``sections`` maps a title to its body: the raw text between its header line and
    the next ``## `` header (Directives and unknown sections are written back exactly).
    ``header_lines`` gives the 1-based line of each header in the file read. A second
    ``## Directives`` header does not start a new section: its text joins the first's
    (so a rewrite puts it there and nothing is lost), and ``more_directives`` holds where
    each such part begins: (offset in the Directives body, its first line in the file).
    """

    preamble: str = ""
    sections: dict[str, str] = field(default_factory=dict)
    header_lines: dict[str, int] = field(default_factory=dict)
    path: str = ""
    more_directives: list[tuple[int, int]] = field(default_factory=list)

    def get(self, title: str) -> str:
        """A section's body, the title matched without regard to case ("" when absent)."""
        wanted = title.strip().lower()
        return next((body for name, body in self.sections.items() if name.lower() == wanted), "")

    def set(self, title: str, body: str) -> None:
        """Replace a known section's body; a section not yet present goes to its canonical place."""
        title = canonical_title(title)
        if title == DIRECTIVES:
            raise ValueError("the Directives section belongs to the person and is never rewritten")
        body = body.strip("\n") + "\n\n"
        if title in self.sections or title not in SECTION_ORDER:
            self.sections[title] = body
            return
        later = SECTION_ORDER[SECTION_ORDER.index(title) + 1 :]
        items = list(self.sections.items())
        position = next((i for i, (name, _) in enumerate(items) if name in later), len(items))
        items.insert(position, (title, body))
        self.sections = dict(items)

    def directives(self) -> tuple[list[Directive], list[Problem]]:
        """The person's directives and the problems met reading them (with file lines)."""
        body = self.sections.get(DIRECTIVES, "")
        header = self.header_lines.get(DIRECTIVES, 0)
        parts = [(0, header + 1), *self.more_directives, (len(body), 0)]
        directives: list[Directive] = []
        problems = [
            Problem(
                first_line - 1,
                f"a second '## {DIRECTIVES}' header: its directives are read with "
                f"the first one's (line {header}), and the next rewrite puts them there",
                self.path,
            )
            for _, first_line in self.more_directives
        ]
        for (start, first_line), (end, _) in zip(parts, parts[1:]):
            found, trouble = parse_directives(body[start:end], first_line, self.path)
            directives += found
            problems += trouble
        return directives, sorted(problems, key=lambda problem: problem.line)


def fresh_memory(name: str = "") -> WorkingMemory:
    """An empty memory with the known sections and a Directives section explaining the syntax."""
    title = f"# Working Memory: {name}" if name else "# Working Memory"
    memory = WorkingMemory(preamble=title + "\n\n")
    for section in KNOWN_SECTIONS:
        memory.sections[section] = "\n"
    memory.sections[DIRECTIVES] = "\n" + DIRECTIVES_HELP
    return memory


def parse_memory(text: str, path: str = "") -> WorkingMemory:
    """A memory from its text. Any text reads: what is not a section is the preamble."""
    memory = WorkingMemory(path=path)
    current: str | None = None
    chunks: list[str] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        header = HEADER_RE.match(line)
        title = canonical_title(header.group(1)) if header else ""
        if header and title == DIRECTIVES and title in memory.sections:  # a second Directives header
            _store(memory, current, chunks)
            current, chunks = title, [memory.sections[title]]
            memory.more_directives.append((len(chunks[0]), number + 1))
        elif header and title not in memory.sections:
            _store(memory, current, chunks)
            current, chunks = title, []
            memory.sections[title] = ""
            memory.header_lines[title] = number
        else:
            chunks.append(line)
    _store(memory, current, chunks)
    return memory


def _store(memory: WorkingMemory, title: str | None, chunks: list[str]) -> None:
    if title is None:
        memory.preamble = "".join(chunks)
    else:
        memory.sections[title] = "".join(chunks)


def read_memory(source: str | os.PathLike) -> WorkingMemory:
    """A memory from a file (a fresh one when it does not exist) or from text.

    A `Path`, or a one-line string not starting with ``#``, is a file path; any other
    string is the memory's text.
    """
    if isinstance(source, str) and ("\n" in source or source.startswith("#") or not source):
        return parse_memory(source)
    path = Path(source)
    if not path.exists():
        memory = fresh_memory(path.name.removesuffix(".md").removesuffix("_memory"))
        memory.path = str(path)
        return memory
    try:
        return parse_memory(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as error:
        raise ParseError(f"{path}: cannot read the memory file ({error})") from error


# ---------------------------------------------------------------- bounded rendering


def _join(memory: WorkingMemory, bodies: dict[str, str]) -> str:
    parts = [memory.preamble]
    for title, body in bodies.items():
        if parts[-1] and not parts[-1].endswith("\n"):
            parts.append("\n")
        parts.append(f"## {title}\n{body}")
    return "".join(parts)


def _items(body: str) -> tuple[list[str], list[list[str]], list[str]]:
    """A section body split into (lines before the items, items, lines after the items).

    An item is a bullet, numbered line or table row with its indented continuation
    lines (and a blank line before the next item); a table's header row and rule line
    stay in the head. Only the first run of items is foldable.
    """
    lines = body.splitlines(keepends=True)
    start = 0
    while start < len(lines) and not ITEM_START_RE.match(lines[start]):
        start += 1
    if start + 1 < len(lines) and lines[start].startswith("|") and TABLE_RULE_RE.match(lines[start + 1]):
        start += 2
    items: list[list[str]] = []
    index = start
    while index < len(lines):
        line = lines[index]
        if ITEM_START_RE.match(line) and not TABLE_RULE_RE.match(line):
            items.append([line])
        elif items and line.strip() and line[:1] in " \t":
            items[-1].append(line)
        elif items and not line.strip() and index + 1 < len(lines) and ITEM_START_RE.match(lines[index + 1]):
            items[-1].append(line)
        else:
            break
        index += 1
    return lines[:start], items, lines[index:]


def _split_summary(items: list[list[str]]) -> tuple[re.Match | None, list[list[str]]]:
    """The summary line left by an earlier fold (if it is the first item) and the other items."""
    summary = SUMMARY_RE.match(items[0][0]) if items else None
    return summary, items[1:] if summary else items


def _fold(title: str, body: str, count: int, log_name: str) -> str:
    """``body`` with its ``count`` oldest items folded into the summary line (a table row in a table)."""
    head, items, tail = _items(body)
    summary, items = _split_summary(items)
    folded = int(summary.group(1)) if summary else 0
    iterations = [int(number) for number in summary.groups()[1:] if number] if summary else []
    taken, kept = items[:count], items[count:]
    iterations += [
        int(number)
        for item in taken
        for match in ITER_RE.finditer("".join(item))
        for number in match.groups()
        if number
    ]
    where = f": see {log_name} iters {min(iterations)}-{max(iterations)}" if iterations else f": see {log_name}"
    summary_text = f"({folded + len(taken)} older {ITEM_NOUNS.get(title, 'items')} summarised{where})"
    line = f"| {summary_text} |\n" if taken[0][0].startswith("|") else f"- {summary_text}\n"
    return "".join(head) + line + "".join(text for item in kept for text in item) + "".join(tail)


def _fold_count(body: str, excess: int) -> tuple[int, int]:
    """How many oldest items to fold to free ``excess`` lines (newest item always kept), and the lines freed."""
    _, items, _ = _items(body)
    summary, items = _split_summary(items)
    count, freed = 0, 0 if summary else -1
    for item in items[:-1]:
        if freed >= excess:
            break
        count, freed = count + 1, freed + len(item)
    return count, freed


def render_memory(memory: WorkingMemory, max_lines: int = 300, log_name: str = "analysis.md") -> str:
    """The memory as text, within ``max_lines`` when the known sections allow it.

    While too long, the known section that frees the most lines folds its oldest items
    into one summary line. Directives and unknown sections are never shortened.
    """
    bodies = dict(memory.sections)
    text = _join(memory, bodies)
    while (excess := text.count("\n") - max_lines) > 0:
        plans = {title: _fold_count(bodies[title], excess) for title in bodies if title in KNOWN_SECTIONS}
        title = max(plans, key=lambda name: (min(plans[name][1], excess), bodies[name].count("\n")), default=None)
        if title is None or plans[title][1] <= 0:
            break
        bodies[title] = _fold(title, bodies[title], plans[title][0], log_name)
        text = _join(memory, bodies)
    return text


def write_memory(
    path: str | os.PathLike, memory: WorkingMemory, max_lines: int = 300, log_name: str = "analysis.md"
) -> None:
    """Rewrite the memory file atomically (write a temporary file, then rename)."""
    write_text_atomic(path, render_memory(memory, max_lines, log_name))
