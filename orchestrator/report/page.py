"""The report as one self-contained HTML page (figures embedded as base64 PNG, no script, no link
outside the file: it opens offline) and the same content as Markdown beside it (figures linked
relatively). Numbers are formatted by one rule (``cell``) for both; nothing on the page depends on
the time it was made.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

THREE_DECIMALS = ("kendall", "spearman", "surrogate_evaluations", "surrogate_final_values")
P_VALUES = ("p_value", "p_holm")
SECONDS = ("_s", "_s_mean", "_s_median")
CSS = """body{font-family:"DejaVu Sans",Verdana,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #ccc;margin-top:2em}
h3{font-size:1.05em}figure{margin:1em 0}img{max-width:100%;height:auto}figcaption{font-size:.9em;color:#444}
table{border-collapse:collapse;font-size:.82em;margin:.5em 0 1.2em}th,td{border:1px solid #ddd;padding:2px 6px;
text-align:right}th{background:#f3f3f3}td.text{text-align:left}.note{color:#a04000}code{font-size:.9em}"""


@dataclass
class Figure:
    name: str      # the PNG's file name, without .png
    title: str
    caption: str   # what it shows, how to read it; surrogate notes included
    path: Path | None = None


@dataclass
class Table:
    name: str      # the key of Report.tables (and tables/NAME.csv)
    title: str
    caption: str
    frame: pd.DataFrame
    by: str | None = None  # one sub-table per value of this column


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def cell(column: str, value) -> str:
    """One table cell, the same on the HTML page and in the Markdown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if column in P_VALUES:
            return f"{value:.3g}"
        if column.endswith(THREE_DECIMALS):
            return f"{value:.3f}"
        if column.endswith(SECONDS) and abs(value) < 100:
            return f"{value:.3g}"
        if "evaluations" in column:
            return f"{value:,.1f}"
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.2f}"
    return str(value)


def _rows(frame: pd.DataFrame) -> list[list[str]]:
    return [[cell(c, v.item() if hasattr(v, "item") else v) for c, v in zip(frame.columns, row)]
            for row in frame.itertuples(index=False)]


def _parts(table: Table) -> list[tuple[str | None, pd.DataFrame]]:
    if table.by is None or table.frame.empty:
        return [(None, table.frame)]
    return [(str(key), g.drop(columns=table.by)) for key, g in table.frame.groupby(table.by, sort=False)]


def _numeric(frame: pd.DataFrame) -> list[bool]:
    return [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
            for c in frame.columns]


def write_html(path: Path, title: str, header: list[str], sections: list[Section]) -> Path:
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    out += [f"<p>{esc(line)}</p>" for line in header]
    for section in sections:
        out.append(f"<h2>{esc(section.title)}</h2>")
        out += [f"<p>{esc(line)}</p>" for line in section.text]
        for fig in section.figures:
            data = base64.b64encode(fig.path.read_bytes()).decode("ascii")
            out.append(f'<figure id="{esc(fig.name)}"><img src="data:image/png;base64,{data}" alt="{esc(fig.title)}">'
                       f"<figcaption><b>{esc(fig.title)}.</b> {esc(fig.caption)}</figcaption></figure>")
        for table in section.tables:
            out.append(f'<h3 id="{esc(table.name)}">{esc(table.title)}</h3><p>{esc(table.caption)}</p>')
            for key, frame in _parts(table):
                if key is not None:
                    out.append(f"<p><b>{esc(key)}</b></p>")
                numeric = _numeric(frame)
                head = "".join(f"<th>{esc(str(c))}</th>" for c in frame.columns)
                body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" if num else f'<td class="text">{esc(v)}</td>'
                                                for v, num in zip(row, numeric)) + "</tr>" for row in _rows(frame))
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append("</body></html>")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(path: Path, title: str, header: list[str], sections: list[Section]) -> Path:
    out = [f"# {title}", "", *[f"{line}\n" for line in header]]
    for section in sections:
        out += [f"## {section.title}", ""]
        out += [f"{line}\n" for line in section.text]
        for fig in section.figures:
            rel = fig.path.relative_to(path.parent).as_posix()
            out += [f"![{fig.title}]({rel})", "", f"**{fig.title}.** {fig.caption}", ""]
        for table in section.tables:
            out += [f"### {table.title}", "", table.caption, ""]
            for key, frame in _parts(table):
                if key is not None:
                    out += [f"**{key}**", ""]
                out.append("| " + " | ".join(_md_escape(str(c)) for c in frame.columns) + " |")
                out.append("|" + "|".join("---:" if num else "---" for num in _numeric(frame)) + "|")
                out += ["| " + " | ".join(_md_escape(v) for v in row) + " |" for row in _rows(frame)]
                out.append("")
    path.write_text("\n".join(out), encoding="utf-8")
    return path
