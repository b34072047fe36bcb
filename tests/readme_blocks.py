"""The README's code blocks, as ``tests/test_readme.py`` runs them.

Every fenced block tagged ``python`` or ``sh`` is run, in document order. An HTML
comment on the line right before a block changes how:

* ``<!-- readme: background -->``: start it and keep it running (``up``, workers);
* ``<!-- readme: file NAME -->``: write the block to file NAME instead of running it;
* ``<!-- readme: skip REASON -->``: not run, for the reason given.

A ``text`` block right after a block (at most two lines of prose between) is what
that block prints: each of its lines must appear in the output, ``...`` standing for
any text. A background block is ready once they all have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "RUNNABLE", "expected_pattern", "read_blocks"]

#: Languages whose blocks are run; every other block is shown, not run.
RUNNABLE = frozenset({"python", "sh"})
MODES = frozenset({"run", "background", "file", "skip"})
_FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
_MARK = re.compile(r"^<!--\s*readme:\s*(\S+)\s*(.*?)\s*-->\s*$")
#: Lines of prose allowed between a block and the ``text`` block showing its output.
_PROSE_BEFORE_OUTPUT = 2


@dataclass(frozen=True)
class Block:
    """One fenced block: where it starts, its language and code, and how to run it."""

    line: int
    lang: str
    code: str
    mode: str = "run"
    argument: str = ""
    prints: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """A test id naming the README line, e.g. ``L42-sh-background``."""
        suffix = "" if self.mode == "run" else f"-{self.mode}"
        return f"L{self.line}-{self.lang}{suffix}"


@dataclass
class _Fence:
    line: int
    end: int
    lang: str
    code: str
    mark: str


def read_blocks(path: Path) -> list[Block]:
    """Every runnable block of the Markdown file at ``path``, in order."""
    lines = path.read_text().splitlines()
    fences = _fences(lines)
    blocks = []
    for index, fence in enumerate(fences):
        if fence.lang not in RUNNABLE:
            continue
        mode, argument = _mode(fence)
        after = fences[index + 1] if index + 1 < len(fences) else None
        prints: tuple[str, ...] = ()
        if after is not None and after.lang == "text":
            between = [text for text in lines[fence.end : after.line - 1] if text.strip()]
            if len(between) <= _PROSE_BEFORE_OUTPUT:
                prints = tuple(text for text in after.code.splitlines() if text.strip())
        blocks.append(Block(fence.line, fence.lang, fence.code, mode, argument, prints))
    return blocks


def expected_pattern(line: str) -> re.Pattern[str]:
    """A shown output line as a pattern: literal text, ``...`` for anything."""
    parts = [re.escape(part.strip()) for part in line.split("...")]
    return re.compile(".*".join(part for part in parts))


def _fences(lines: list[str]) -> list[_Fence]:
    fences = []
    index = 0
    while index < len(lines):
        opened = _FENCE.match(lines[index])
        if not opened:
            index += 1
            continue
        start = index
        index += 1
        while index < len(lines) and not lines[index].startswith("```"):
            index += 1
        mark = lines[start - 1] if start > 0 else ""
        code = "\n".join(lines[start + 1 : index]) + "\n"
        fences.append(_Fence(start + 1, index + 1, opened.group(1), code, mark))
        index += 1
    return fences


def _mode(fence: _Fence) -> tuple[str, str]:
    marked = _MARK.match(fence.mark)
    if marked is None:
        if "readme:" in fence.mark:
            raise ValueError(f"README line {fence.line - 1}: malformed mark {fence.mark!r}")
        return "run", ""
    mode, argument = marked.group(1), marked.group(2)
    if mode not in MODES or mode == "run":
        raise ValueError(f"README line {fence.line - 1}: unknown mark {mode!r}")
    if mode in ("file", "skip") and not argument:
        raise ValueError(f"README line {fence.line - 1}: `{mode}` needs a name or a reason")
    return mode, argument
