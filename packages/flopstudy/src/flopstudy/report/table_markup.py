"""A small table value rendered both as Markdown (``report.md``) and as HTML (``report.html``)."""

from __future__ import annotations

import dataclasses
import html

__all__ = ["Table", "number"]


def number(value: float | int | None, spec: str = ".3g", empty: str = "-") -> str:
    """``value`` formatted with ``spec``; ``empty`` for None."""
    return empty if value is None else format(value, spec)


@dataclasses.dataclass(frozen=True)
class Table:
    """``rows`` of cell strings under ``columns``; cells in ``bold`` ((row, column) pairs) are emphasised."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""
    bold: frozenset[tuple[int, int]] = frozenset()

    def __post_init__(self) -> None:
        bad = [i for i, row in enumerate(self.rows) if len(row) != len(self.columns)]
        if bad:
            raise ValueError(f"rows {bad} of table {self.title!r}: expected {len(self.columns)} cells each")

    def markdown(self) -> str:
        def cell(i: int, j: int, text: str) -> str:
            text = text.replace("|", "\\|")
            return f"**{text}**" if (i, j) in self.bold else text

        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(cell(i, j, c) for j, c in enumerate(row)) + " |" for i, row in enumerate(self.rows)]
        if not self.rows:
            lines.append("| " + " | ".join(["(none)"] + [""] * (len(self.columns) - 1)) + " |")
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        def cell(i: int, j: int, text: str) -> str:
            text = html.escape(text)
            return f"<td><b>{text}</b></td>" if (i, j) in self.bold else f"<td>{text}</td>"

        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(cell(i, j, c) for j, c in enumerate(row)) + "</tr>"
                       for i, row in enumerate(self.rows))
        if not self.rows:
            body = f"<tr><td colspan=\"{len(self.columns)}\">(none)</td></tr>"
        note = f"<p class=\"note\">{html.escape(self.note)}</p>" if self.note else ""
        return (f"<h3>{html.escape(self.title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                f"</table>{note}")

    def to_json(self) -> dict:
        return {"title": self.title, "columns": list(self.columns), "rows": [list(r) for r in self.rows],
                "note": self.note}
