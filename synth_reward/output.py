"""How the CLI prints listings: a Rich table on a terminal, plain tab-separated rows in a pipe, or JSON.

Why: Rich sizes a table to the terminal, and with no terminal (`synth-reward tasks | cat`, `| grep kneel`,
a script reading stdout) it falls back to 80 columns and wraps every long cell into a column of words, so
one row spans many lines and `grep` finds fragments. So every command that lists things prints through
`print_records`, which picks the form by where stdout goes:

- a terminal: a Rich table as wide as the terminal;
- anything else (a pipe, a file): a header line and one line per row, cells separated by tabs, never
  wrapped (tabs and newlines inside a cell become spaces), no colour or markup;
- `--json`: the records themselves as a JSON array (or the caller's own JSON value).

`make_console` is the same rule for ordinary lines: piped output is not wrapped at 80 columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table


def make_console(**kwargs: Any) -> Console:
    """A Console that, when its stream is not a terminal, never wraps or crops long lines (pipes, files)."""
    console = Console(**kwargs)
    if not console.is_terminal:
        console.soft_wrap = True
    return console


def print_json(console: Console, value: Any) -> None:
    """`value` as indented JSON on the console's stream, untouched by Rich (no markup, wrapping or colour)."""
    console.file.write(json.dumps(value, indent=2, default=str) + "\n")
    console.file.flush()


@dataclass(frozen=True)
class Column:
    """One column: the record key it shows, its header, and how the terminal table lays it out."""

    key: str
    header: str | None = None
    no_wrap: bool = False
    ratio: int | None = None
    justify: JustifyMethod = "left"

    @property
    def title(self) -> str:
        return self.header if self.header is not None else self.key


_SPACE = re.compile(r"[\t\r\n]+")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def plain_lines(records: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> list[str]:
    """The header line and one tab-separated line per record (a cell's tabs and newlines become spaces)."""
    lines = ["\t".join(c.title for c in columns)]
    for record in records:
        lines.append("\t".join(_SPACE.sub(" ", _cell(record.get(c.key))) for c in columns))
    return lines


def print_records(
    console: Console,
    records: Sequence[Mapping[str, Any]],
    columns: Sequence[Column | str],
    *,
    json_output: bool = False,
    json_value: Any = None,
    title: str | None = None,
    group_by: str | None = None,
    group_titles: Mapping[str, str] | None = None,
    cells: Mapping[str, Any] | None = None,
) -> None:
    """Print records as a terminal table, plain tab-separated lines (not a terminal), or JSON.

    `records` are JSON-able dicts; `columns` picks and orders the keys the table and plain forms show.
    `json_value` replaces the records in JSON output (default: the records). On a terminal, `group_by`
    splits the rows into one table per value of that key (titled by `group_titles`, else the value);
    the plain form keeps one header and shows that key as its first column, so each line stands alone.
    `cells` maps a key to a function that formats its value for the table and plain forms only.
    """
    cols = [Column(c) if isinstance(c, str) else c for c in columns]
    if json_output:
        print_json(console, list(records) if json_value is None else json_value)
        return
    shown = [_format(r, cells) for r in records]
    if not console.is_terminal:
        if group_by is not None and all(c.key != group_by for c in cols):
            cols = [Column(group_by), *cols]
        console.file.write("".join(line + "\n" for line in plain_lines(shown, cols)))
        console.file.flush()
        return
    # every titled group gets a table, an empty one too
    titled = group_titles if group_by is not None and group_titles else {}
    groups: dict[str | None, list[Mapping[str, Any]]] = {key: [] for key in titled}
    for record in shown:
        groups.setdefault(None if group_by is None else _cell(record.get(group_by)), []).append(record)
    if not groups:
        groups[None] = []
    expand = any(c.ratio for c in cols)
    for key, rows in groups.items():
        heading = title if key is None else (group_titles or {}).get(key, key)
        table = Table(title=heading, title_justify="left", expand=expand)
        for c in cols:
            table.add_column(c.title, no_wrap=c.no_wrap, ratio=c.ratio, justify=c.justify)
        for record in rows:
            table.add_row(*(_cell(record.get(c.key)) for c in cols))
        console.print(table, markup=False, highlight=False)


def _format(record: Mapping[str, Any], cells: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not cells:
        return record
    return {k: (cells[k](v) if k in cells else v) for k, v in record.items()}
