"""`<name>_analysis.md`: the append-only log of iterations, one `## Iter N` entry each.

Owns the `Entry` record, its writer and its parser (tolerant of hand- and LLM-written
variants; an entry with an id is never dropped silently).

Written shape (DESIGN.md, seed 003 Step 3), one line each, a blank line after::

    ## Iter N: status
    Node: id=N, parent=P|root
    Mode/Strategy: ...
    Slot: slot_S (label)
    Config: short=value, ...
    Metrics: name=value, ...        floats written with 6 significant digits (``:.6g``)
    Visual: ...
    Mutation: param: old -> new
    Strategy: ...
    Observation: ...
    Next: parent=P|root
    Failure: kind: detail           only for failed jobs
    Other Key: value                the entry's extra lines, in order

The parser accepts ``##`` or ``###`` headers, fields in any order, ``parent=root``,
``None`` or ``0`` for the root, a ``Next:`` line with text after the parent, other
status words, extra ``Key: value`` lines, text between entries, and values such as
``7.37E+03``, ``-766043.33`` or ``nan``. What it cannot read is a `Problem` with its
line; the entry itself is kept. A last entry cut off mid-line (the file does not end
with a newline: a crash during the append) is reported and left out.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections import ChainMap
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from memory.analysis_log import NUMBER
from memory.atomic import append_text_durable
from memory.crash import crash, crash_due
from memory.errors import Problem

ROOT_WORDS = ("root", "none", "0")
FLOAT_FORMAT = ".6g"

HEADER_RE = re.compile(
    r"^#{2,3}\s*Iter(?:ation)?\s+(\d+)(?:\s*:|\s+[-–—]\s|\s+(?=[A-Za-z])|\s*$)\s*(.*?)\s*$", re.IGNORECASE
)
FIELD_RE = re.compile(r"^([A-Za-z][\w/() \-]{0,40}?)\s*:(?:\s+(.*?)|)\s*$")
RULE_RE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")
PAIR_SPLIT_RE = re.compile(r",\s*(?=[A-Za-z_][\w.\-]*\s*=)")
PAIR_RE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*=\s*(.*?)\s*$")
METRIC_VALUE_RE = re.compile(rf"^({NUMBER})(?:\s*\(.*\)|\s+.*)?$", re.IGNORECASE)
ID_RE = re.compile(r"\bid\s*=\s*(\d+)", re.IGNORECASE)
PARENT_RE = re.compile(r"\bparent\s*=\s*([A-Za-z]+|-?\d+)", re.IGNORECASE)
SLOT_RE = re.compile(r"slot[_ ]?(\d+)", re.IGNORECASE)
LABEL_RE = re.compile(r"\((.*)\)")
MUTATION_RE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*[:=]?\s*(\S+?)\s*(?:->|→|=>)\s*(\S+)", re.IGNORECASE)

TEXT_FIELDS = {
    "mode/strategy": "mode",
    "visual": "visual",
    "mutation": "mutation",
    "strategy": "strategy",
    "observation": "observation",
    "failure": "failure",
}
STANDARD_KEYS = {"node", "slot", "config", "metrics", "next", *TEXT_FIELDS}


@dataclass
class Entry:
    """One iteration of the log, exactly the lines of DESIGN.md's entry shape."""

    iteration: int
    status: str  # converged | partial | failed | other word seen
    node_id: int  # "Node: id=N" is authoritative for the tree
    parent: int | None  # None = root
    mode: str = ""
    slot: int | None = None
    slot_label: str = ""  # "homeostasis_time_step=4"
    config: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    visual: str = ""
    mutation: str = ""  # "lr_node_homeo: 0.01 -> 0.03"
    strategy: str = ""
    observation: str = ""
    next_parent: int | None = None
    failure: str = ""  # "diverged: nan in phase2_loss" for failed jobs
    extra: dict[str, str] = field(default_factory=dict)
    line: int = 0  # 1-based line of the header in its file
    has_next: bool = True  # False: the entry has no "Next:" line

    @property
    def is_replicate(self) -> bool:
        """A seed replicate of node ``parent`` (its mode's first word is ``replicate``)."""
        words = self.mode.lower().split()
        return bool(words) and words[0].strip(":,(") == "replicate"


@dataclass(frozen=True)
class Mutation:
    """One parameter change read from a ``Mutation:`` line."""

    param: str
    old: str
    new: str


@dataclass
class NotebookParse:
    """What `parse_notebook` read: the entries in file order, and what it could not read."""

    entries: list[Entry]
    problems: list[Problem]


def parse_mutation(text: str) -> Mutation | None:
    """``lr_k: 0.005 -> 0.01`` as a `Mutation`; None for text such as ``None (baseline)``."""
    match = MUTATION_RE.match(text)
    if not match:
        return None
    return Mutation(match.group(1), match.group(2), match.group(3).rstrip(".,;:)"))


# ---------------------------------------------------------------- writing


def format_number(value: float) -> str:
    """A metric value as written in the log (6 significant digits; nan, inf, -inf)."""
    if math.isnan(value):
        return "nan"
    return format(value, FLOAT_FORMAT)


def as_logged(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` as a reader of the log gets them back (`format_number`'s 6 significant digits):
    what the writer scores, so a daemon that wrote an entry and one that reads it agree."""
    return {key: float(format_number(value)) for key, value in metrics.items()}


def _root_or(node: int | None) -> str:
    return "root" if node is None else str(node)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _field(key: str, value: str) -> str:
    value = _one_line(value)
    return f"{key}: {value}" if value else f"{key}:"


def format_entry(entry: Entry) -> str:
    """The entry as log lines, in DESIGN.md's order, followed by a blank line."""
    slot = "" if entry.slot is None else f"slot_{entry.slot}"
    if entry.slot_label:
        slot = f"{slot} ({entry.slot_label})".strip()
    lines = [
        f"## Iter {entry.iteration}: {_one_line(entry.status)}".rstrip(),
        f"Node: id={entry.node_id}, parent={_root_or(entry.parent)}",
        _field("Mode/Strategy", entry.mode),
        _field("Slot", slot),
        _field("Config", ", ".join(f"{key}={value}" for key, value in entry.config.items())),
        _field("Metrics", ", ".join(f"{key}={format_number(value)}" for key, value in entry.metrics.items())),
        _field("Visual", entry.visual),
        _field("Mutation", entry.mutation),
        _field("Strategy", entry.strategy),
        _field("Observation", entry.observation),
    ]
    if entry.has_next:
        lines.append(f"Next: parent={_root_or(entry.next_parent)}")
    if entry.failure:
        lines.append(_field("Failure", entry.failure))
    lines.extend(_field(key, value) for key, value in entry.extra.items())
    return "\n".join(lines) + "\n\n"


TORN_SUFFIX = ".torn"
TORN_MARK = "ends in the middle of this entry"


def append_entry(path: str | os.PathLike, entry: Entry) -> None:
    """Append one entry to the log in a single durable write.

    A log whose last write was cut short (a crash or a full disk in the middle of an
    append: the file does not end with a newline) first has its torn tail, the part
    `parse_notebook` leaves out, moved to ``<log>.torn``; otherwise the new entry would
    be glued to the torn line and both would be misread.
    """
    set_aside_torn_tail(path)
    text = format_entry(entry)
    lines = text.splitlines(keepends=True)
    for point, written in (
        ("log.torn-append", text[: len(text) // 2]),  # the reliability suite's
        ("log.torn-at-line", "".join(lines[: len(lines) // 2])),
    ):  # short writes
        if crash_due(point):
            append_text_durable(path, written)
            crash()
    append_text_durable(path, text)


def set_aside_torn_tail(path: str | os.PathLike) -> str:
    """Move the torn tail of a log (text after its last newline-ended entry) to ``<log>.torn``.

    The tail is the entry the parser leaves out (from its header line), or the last,
    unterminated line when no entry is left out. Returns the text moved ("" for none).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return ""
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return ""
    except FileNotFoundError:
        return ""
    data = path.read_bytes()
    text = data.decode("utf-8", errors="replace")
    cut = data.rfind(b"\n") + 1  # the unterminated last line
    torn = [p for p in parse_notebook(text).problems if TORN_MARK in p.message]
    if torn:
        lines = data.splitlines(keepends=True)
        cut = len(b"".join(lines[: torn[-1].line - 1]))
    return _move_to_torn(path, data, cut)


def set_aside_from(path: str | os.PathLike, offset: int) -> str:
    """Move everything after byte ``offset`` of the log to ``<log>.torn``; returns the text moved.

    For a writer that knows where its append began: what lies beyond that point after a
    crash is the unfinished append (cut anywhere, even on a line boundary), never to be
    read as an entry.
    """
    path = Path(path)
    data = path.read_bytes() if path.exists() else b""
    return _move_to_torn(path, data, offset) if len(data) > offset else ""


def _move_to_torn(path: Path, data: bytes, cut: int) -> str:
    """Append ``data[cut:]`` to ``<log>.torn`` and truncate the log at ``cut``."""
    tail = data[cut:].decode("utf-8", errors="replace")
    append_text_durable(path.with_name(path.name + TORN_SUFFIX), tail + "\n")
    with open(path, "r+b") as handle:
        handle.truncate(cut)
        handle.flush()
        os.fsync(handle.fileno())
    return tail


# ---------------------------------------------------------------- reading


def _node_ref(text: str) -> int | None:
    """``root``, ``None``, ``0`` -> None; digits -> int; anything else raises ValueError."""
    if text.lower() in ROOT_WORDS:
        return None
    return int(text)


class _EntryReader:
    """Fills one `Entry` from its field lines; collects what it cannot read."""

    def __init__(self, header_line: int, iteration: int, header_rest: str, path: str) -> None:
        status, _, note = header_rest.partition(" ")
        self.path = path
        self.problems: list[Problem] = []
        self.entry = Entry(
            iteration=iteration,
            status=status.lower().strip(":,."),
            node_id=iteration,
            parent=None,
            line=header_line,
            has_next=False,
        )
        if note.strip():
            self.entry.extra["Status note"] = note.strip()
        self.seen: set[str] = set()
        self.last_text_field = ""

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(line, f"Iter {self.entry.iteration}: {message}", self.path))

    def add_field(self, number: int, key: str, value: str) -> None:
        name = key.lower()
        if name in self.seen and name not in ("config", "metrics"):
            self.problem(number, f"second {key}: line; keeping this one")
        self.seen.add(name)
        self.last_text_field = ""
        if name in TEXT_FIELDS:
            setattr(self.entry, TEXT_FIELDS[name], value)
            self.last_text_field = TEXT_FIELDS[name]
        elif name in STANDARD_KEYS:
            getattr(self, f"read_{name}")(number, value)
        else:
            self.entry.extra[key] = value
            self.last_text_field = key

    def continue_text(self, number: int, text: str) -> None:
        """A line without a key, right after a text field: the field goes on."""
        if not self.last_text_field:
            self.problem(number, f"line not understood: {text.strip()[:60]!r}")
        elif self.last_text_field in self.entry.extra:
            self.entry.extra[self.last_text_field] += " " + text.strip()
        else:
            previous = getattr(self.entry, self.last_text_field)
            setattr(self.entry, self.last_text_field, f"{previous} {text.strip()}".strip())

    def read_node(self, number: int, value: str) -> None:
        node_id, parent = ID_RE.search(value), PARENT_RE.search(value)
        if node_id:
            self.entry.node_id = int(node_id.group(1))
        else:
            self.problem(number, f"Node: line has no id=N; using {self.entry.iteration}")
        self.entry.parent = self.read_ref(number, "Node", parent)

    def read_next(self, number: int, value: str) -> None:
        parent = PARENT_RE.search(value)
        if parent is None:
            self.problem(number, "Next: line has no parent=P; ignored")
            return
        self.entry.has_next = True
        self.entry.next_parent = self.read_ref(number, "Next", parent)

    def read_ref(self, number: int, key: str, match: re.Match | None) -> int | None:
        if match is None:
            self.problem(number, f"{key}: line has no parent=P; using root")
            return None
        try:
            return _node_ref(match.group(1))
        except ValueError:
            self.problem(number, f"{key}: parent={match.group(1)} is not a node id; using root")
            return None

    def read_slot(self, number: int, value: str) -> None:
        slot, label = SLOT_RE.search(value), LABEL_RE.search(value)
        if slot:
            self.entry.slot = int(slot.group(1))
        elif value:
            self.problem(number, f"Slot: no slot number in {value!r}")
        self.entry.slot_label = label.group(1).strip() if label else ""

    def read_config(self, number: int, value: str) -> None:
        for key, text in self.pairs(number, "Config", value):
            self.entry.config[key] = text

    def read_metrics(self, number: int, value: str) -> None:
        for key, text in self.pairs(number, "Metrics", value.replace("**", "").replace("`", "")):
            match = METRIC_VALUE_RE.match(text)
            if match:
                self.entry.metrics[key] = float(match.group(1))
            else:
                self.problem(number, f"Metrics: {key}={text} is not a number; left out")

    def pairs(self, number: int, key: str, value: str) -> list[tuple[str, str]]:
        pairs = []
        for piece in PAIR_SPLIT_RE.split(value):
            match = PAIR_RE.match(piece)
            if match:
                pairs.append((match.group(1), match.group(2)))
            elif piece.strip():
                self.problem(number, f"{key}: cannot read {piece.strip()[:60]!r} (expected name=value)")
        return pairs

    def finish(self) -> None:
        if "node" not in self.seen:
            self.problem(self.entry.line, f"no Node: line; using id={self.entry.node_id}, parent=root")
        if "metrics" not in self.seen and not self.entry.failure:
            self.problem(self.entry.line, "no Metrics: line")


def _is_boundary(line: str) -> bool:
    return line.startswith("#") or bool(RULE_RE.match(line))


def parse_notebook(text: str, path: str = "") -> NotebookParse:
    """Every ``## Iter N`` entry of an analysis log, with the problems met on the way."""
    return _parse(text, path, 1, {})


def _parse(text: str, path: str, first_line: int, entry_of: MutableMapping[int, Entry]) -> NotebookParse:
    """`parse_notebook` of a piece of a log that starts at line ``first_line``.

    ``entry_of`` maps the node ids seen earlier in the file to their entries (a second
    entry with the same id is reported); this piece's entries are added to it.
    """
    lines = text.splitlines()
    entries: list[Entry] = []
    problems: list[Problem] = []
    offset = first_line - 1
    index = 0
    while index < len(lines):
        header = HEADER_RE.match(lines[index])
        if not header:
            index += 1
            continue
        reader = _EntryReader(index + 1 + offset, int(header.group(1)), header.group(2), path)
        index = _read_entry_body(lines, index + 1, reader, offset)
        reader.finish()
        problems.extend(reader.problems)
        entry = reader.entry
        if index >= len(lines) and text and not text.endswith("\n"):
            problems.append(
                Problem(
                    entry.line, f"Iter {entry.iteration}: the file {TORN_MARK} (no final newline); entry left out", path
                )
            )
            break
        if entry.node_id in entry_of:
            earlier = entry_of[entry.node_id]
            problems.append(
                Problem(
                    entry.line,
                    f"Iter {entry.iteration}: node id {entry.node_id} already "
                    f"used by Iter {earlier.iteration} at line {earlier.line}; "
                    "the later entry wins in the tree",
                    path,
                )
            )
        entry_of[entry.node_id] = entry
        entries.append(entry)
    return NotebookParse(entries, problems)


class NotebookReader:
    """The entries of a log that grows by appends, each byte parsed about once.

    `read` re-reads nothing when the file is unchanged (inode, size, modification time).
    When it grew, the part parsed before (every entry up to the last header, whose end
    is known) is checked by a hash of its bytes and only what follows is parsed. If
    that part changed (a hand edit, a rewrite, a truncation before it), the whole file
    is parsed again and `notices` gets one line saying so. ``bytes_parsed`` counts the
    bytes handed to the parser, so a test can see that appends cost what they add.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.bytes_parsed = 0
        self.generation = 0  # read whole again this many times (after the first): entries read before are stale
        self.notices: list[str] = []
        self._forget()

    def _forget(self) -> None:
        self._version: tuple[int, int, int] | None = None
        self._stable = 0  # bytes of the file whose entries are final (they end before a later header)
        self._stable_lines = 0
        self._digest = _digest(b"")
        self._entries: list[Entry] = []
        self._problems: list[Problem] = []
        self._entry_of: dict[int, Entry] = {}
        self._tail = NotebookParse([], [])

    def forget(self) -> None:
        """Parse the whole file at the next `read` (the caller changed it other than by an append)."""
        self._forget()
        self.generation += 1

    def read(self) -> NotebookParse:
        """The log's entries and problems as the file is now."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self._version is not None:
                self._forget()
                self.generation += 1
            return NotebookParse([], [])
        version = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if version != self._version:
            data = self.path.read_bytes()
            if self._version is not None and not self._only_appended(data, stat.st_ino):
                self.notices.append(f"{self.path}: changed other than by an append (a hand edit?); read again whole")
                self._forget()
                self.generation += 1
            self._advance(data)
            self._version = version
        return NotebookParse(self._entries + self._tail.entries, self._problems + self._tail.problems)

    def _only_appended(self, data: bytes, inode: int) -> bool:
        return inode == self._version[0] and len(data) >= self._stable and _digest(data[: self._stable]) == self._digest

    def _advance(self, data: bytes) -> None:
        """Parse what follows the stable part; the entries before the last header become stable."""
        tail = data[self._stable :]
        cut = _last_header_at(tail)
        if cut > 0:
            chunk = tail[:cut].decode("utf-8", errors="replace")
            parsed = _parse(chunk, str(self.path), self._stable_lines + 1, self._entry_of)
            self.bytes_parsed += cut
            self._entries.extend(parsed.entries)
            self._problems.extend(parsed.problems)
            self._stable += cut
            self._stable_lines += len(chunk.splitlines())
            self._digest = _digest(data[: self._stable])
        rest = tail[cut:].decode("utf-8", errors="replace")
        self.bytes_parsed += len(tail) - cut
        self._tail = _parse(rest, str(self.path), self._stable_lines + 1, ChainMap({}, self._entry_of))


HEADER_START_RE = re.compile(rb"(?mi)^#{2,3}[ \t]*iter")


def _last_header_at(data: bytes) -> int:
    """Where the last entry header of ``data`` starts (0 when there is none)."""
    for match in reversed(list(HEADER_START_RE.finditer(data))):
        end = data.find(b"\n", match.start())
        line = data[match.start() : end if end >= 0 else len(data)].decode("utf-8", errors="replace")
        if HEADER_RE.match(line.splitlines()[0] if line else ""):
            return match.start()
    return 0


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _read_entry_body(lines: list[str], index: int, reader: _EntryReader, offset: int = 0) -> int:
    """Feed the entry's lines to ``reader``; return the index of the first line after it.

    The entry ends at a header, a horizontal rule, or a blank line followed by
    something other than a standard field (free text between entries).
    """
    after_blank = False
    while index < len(lines):
        line = lines[index]
        if _is_boundary(line):
            return index
        if not line.strip():
            after_blank = bool(reader.seen)
            index += 1
            continue
        field_match = FIELD_RE.match(line)
        is_standard = bool(field_match) and field_match.group(1).strip().lower() in STANDARD_KEYS
        if after_blank and not is_standard:
            return index
        if field_match:
            reader.add_field(index + 1 + offset, field_match.group(1).strip(), field_match.group(2) or "")
        else:
            reader.continue_text(index + 1 + offset, line)
        after_blank = False
        index += 1
    return index
