"""newsbeam report OUT: one self-contained HTML page that describes a dataset.

The page reads nothing from the network: plotly.js is inlined once in the page, every chart is
a plotly figure embedded as JSON, and a Content-Security-Policy forbids every fetch (a future
plotly that tried one would fail loudly, not leak). Sections:

- summary: rows, articles, sources, date range, runs, the versions that wrote the dataset;
- articles per day per source (OUT/articles: the ``date`` partition and ``source``);
- languages (``language``) and countries mentioned (``countries`` exploded, top 20);
- duplicates and rejects per run, by method and by reason (the OUT/_runs manifests), with
  the all-time totals read from OUT/duplicates and OUT/rejects;
- field coverage per source: the share of articles with authors, published_at and language;
- the run history (OUT/_runs/*.json).

Articles are counted once: a revised article has one row per revision in OUT/articles, and
the report keeps the latest revision of each ``article_id``.

The data is untrusted (titles, sources and reasons come from the web): every string placed in
the HTML goes through ``html.escape``, and every string handed to plotly is escaped too,
because plotly renders a subset of HTML in labels (``<b>``, ``<a href>``...). Plotly decodes
the entities back, so a source named ``<b>x</b>`` is shown as exactly that text. Plotly's own
JSON embedding escapes ``<``, ``>`` and ``/``, so no value can close the ``<script>``.

Only local output folders are read (pyarrow on the local filesystem).
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from transforms.errors import error_line

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# The folders that make a directory a newsbeam dataset (README, "The output").
DATASET_FOLDERS = ("articles", "duplicates", "rejects", "_runs")
ARTICLE_COLUMNS = ("article_id", "revision", "date", "source", "language", "countries",
                   "authors", "published_at")
COVERAGE_FIELDS = ("authors", "published_at", "language")

NO_SOURCE = "(no source)"
NO_LANGUAGE = "(unknown)"
NO_DATE = "(no date)"

# Chart sizes: past these the tail is folded into one bar or left to the table.
TOP_SOURCES_PER_DAY = 12
TOP_LANGUAGES = 25
TOP_COUNTRIES = 20
TOP_SOURCES_HEATMAP = 40
MAX_TABLE_ROWS = 200

# No fetch of any kind: scripts and styles only inline, images only as data:/blob: URLs
# (plotly's "download as PNG" button).
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; "
       "form-action 'none'")
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 0 24px 48px; color: #1f2933; }
header { border-bottom: 1px solid #d9dee3; padding: 16px 0 8px; }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { margin: 32px 0 8px; font-size: 19px; border-bottom: 1px solid #eef0f2; }
h3 { margin: 16px 0 6px; font-size: 15px; }
nav a { margin-right: 12px; }
.meta { color: #52606d; margin: 4px 0; }
.nodata { color: #7b8794; font-style: italic; }
.note { color: #52606d; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #d9dee3; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f7fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fdecea; }
.chart { min-height: 200px; }
.grid { display: flex; flex-wrap: wrap; gap: 24px; }
.grid > div { flex: 1 1 480px; min-width: 0; }
code { background: #f5f7fa; padding: 0 3px; }
"""


class NoDataset(Exception):
    """The folder holds no newsbeam dataset (none of articles/, duplicates/, rejects/,
    _runs/)."""


@dataclass(frozen=True)
class RunRecord:
    """One batch run (or stream window) as its manifest OUT/_runs/<run_id>.json tells it."""

    run_id: str
    started_at: str
    finished_at: str
    duration_s: float | None
    counts: dict[str, int]
    status: str
    rejects_by_reason: dict[str, int]
    duplicates_by_method: dict[str, int]
    versions: dict[str, str]

    def sort_key(self) -> tuple[datetime, str]:
        return (_parse_time(self.started_at), self.run_id)


@dataclass(frozen=True)
class SourceCoverage:
    """How many of a source's articles have each field."""

    source: str
    articles: int
    present: dict[str, int]

    def share(self, name: str) -> float:
        return self.present.get(name, 0) / self.articles if self.articles else 0.0


@dataclass
class ArticleStats:
    """What the charts need from OUT/articles, aggregated (never the rows themselves)."""

    rows: int = 0
    articles: int = 0
    per_day_source: Counter[tuple[str, str]] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    countries: Counter[str] = field(default_factory=Counter)
    coverage: list[SourceCoverage] = field(default_factory=list)
    missing_columns: tuple[str, ...] = ()
    schema_version: str | None = None
    written_by: str | None = None


@dataclass
class RunHistory:
    runs: list[RunRecord] = field(default_factory=list)
    streams: int = 0  # *-stream.json and other manifests without "counts": not runs
    unreadable: list[str] = field(default_factory=list)


# --- reading --------------------------------------------------------------------------------

def _parse_time(text: str) -> datetime:
    """An ISO 8601 time from a manifest; unparsable ones sort first."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return datetime.min.replace(tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _int_map(value: Any) -> dict[str, int]:
    """A {name: count} block of a manifest, tolerant of missing or odd values."""
    if not isinstance(value, dict):
        return {}
    result: dict[str, int] = {}
    for key, count in value.items():
        if isinstance(count, bool) or not isinstance(count, (int, float)):
            continue
        result[str(key)] = int(count)
    return result


def _run_from_manifest(data: dict[str, Any], fallback_id: str) -> RunRecord:
    duration = data.get("duration_s")
    versions = data.get("versions")
    return RunRecord(
        run_id=str(data.get("run_id") or fallback_id),
        started_at=str(data.get("started_at") or ""),
        finished_at=str(data.get("finished_at") or ""),
        duration_s=float(duration) if isinstance(duration, (int, float))
        and not isinstance(duration, bool) else None,
        counts=_int_map(data.get("counts")),
        status=str(data.get("status") or "unknown"),
        rejects_by_reason=_int_map(data.get("rejects_by_reason")),
        duplicates_by_method=_int_map(data.get("duplicates_by_method")),
        versions={str(k): str(v) for k, v in versions.items()}
        if isinstance(versions, dict) else {},
    )


def read_runs(out_dir: str) -> RunHistory:
    """Every run manifest in OUT/_runs, oldest first. Stream manifests (``*-stream.json``,
    no ``counts`` block) are counted but are not runs: their windows have manifests of
    their own. Files that are not JSON objects are listed as unreadable, not fatal."""
    history = RunHistory()
    folder = os.path.join(out_dir, "_runs")
    if not os.path.isdir(folder):
        return history
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json") or name.startswith("."):
            continue  # .<run_id>.json.inprogress: a manifest being written
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            history.unreadable.append(name)
            continue
        if not isinstance(data, dict):
            history.unreadable.append(name)
        elif not isinstance(data.get("counts"), dict):
            history.streams += 1
        else:
            history.runs.append(_run_from_manifest(data, name[: -len(".json")]))
    history.runs.sort(key=RunRecord.sort_key)
    return history


def _latest_revisions(table: pa.Table) -> pa.Table:
    """One row per article_id: its highest revision (rows without an id are kept)."""
    if "article_id" not in table.column_names or table.num_rows == 0:
        return table
    ids = table.column("article_id").to_pylist()
    revisions = (table.column("revision").to_pylist() if "revision" in table.column_names
                 else [None] * len(ids))
    best: dict[str, int] = {}
    keep: list[int] = []
    for row, (article_id, revision) in enumerate(zip(ids, revisions, strict=True)):
        if article_id is None:
            keep.append(row)
            continue
        seen = best.get(article_id)
        if seen is None or (revisions[seen] or 0) < (revision or 0):
            best[article_id] = row
    if len(best) + len(keep) == table.num_rows:
        return table
    return table.take(sorted(keep + list(best.values())))


def _labels(column: pa.ChunkedArray, missing: str) -> list[str]:
    return [missing if value is None or value == "" else str(value)
            for value in column.to_pylist()]


def _present(table: pa.Table, name: str) -> list[bool]:
    """Whether each row has the field: a non-empty list, a non-null time, a non-empty
    string."""
    column = table.column(name)
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        mask = pc.greater(pc.list_value_length(column), 0)
    elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        mask = pc.and_(pc.is_valid(column), pc.not_equal(column, ""))
    else:
        mask = pc.is_valid(column)
    return [bool(v) for v in pc.fill_null(mask, False).to_pylist()]


def read_articles(out_dir: str) -> ArticleStats | None:
    """Aggregates over OUT/articles, or None when it holds no Parquet file yet. Only the
    columns the charts use are read; a column an older schema lacks is reported, not
    fatal."""
    folder = os.path.join(out_dir, "articles")
    if not os.path.isdir(folder):
        return None
    # `date` as a string: pyarrow would otherwise infer date32 from the directory names.
    dataset = _parquet_dataset(folder, ds.partitioning(
        pa.schema([("date", pa.string())]), flavor="hive"))
    if dataset is None:
        return None
    names = set(dataset.schema.names)
    columns = [c for c in ARTICLE_COLUMNS if c in names]
    table = _latest_revisions(dataset.to_table(columns=columns))
    meta = dataset.schema.metadata or {}
    stats = ArticleStats(
        rows=dataset.count_rows(),
        articles=table.num_rows,
        missing_columns=tuple(c for c in ARTICLE_COLUMNS if c not in names),
        schema_version=_decode(meta.get(b"newsbeam.schema_version")),
        written_by=_decode(meta.get(b"newsbeam.version")),
    )
    n = table.num_rows
    sources = _labels(table.column("source"), NO_SOURCE) if "source" in names else [NO_SOURCE] * n
    dates = _labels(table.column("date"), NO_DATE) if "date" in names else [NO_DATE] * n
    stats.per_day_source = Counter(zip(dates, sources, strict=True))
    if "language" in names:
        stats.languages = Counter(_labels(table.column("language"), NO_LANGUAGE))
    if "countries" in names:
        flat = pc.list_flatten(table.column("countries"))
        stats.countries = Counter(str(c) for c in flat.to_pylist() if c)
    present = {name: _present(table, name) for name in COVERAGE_FIELDS if name in names}
    totals: Counter[str] = Counter(sources)
    hits: dict[str, Counter[str]] = {name: Counter() for name in present}
    for name, flags in present.items():
        hits[name].update(s for s, flag in zip(sources, flags, strict=True) if flag)
    stats.coverage = [
        SourceCoverage(source, count, {name: hits[name][source] for name in present})
        for source, count in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return stats


def _parquet_dataset(folder: str, partitioning: ds.Partitioning | None = None
                     ) -> ds.Dataset | None:
    """The ``.parquet`` files under ``folder`` as one dataset, or None when there is none.
    Hidden and ``_``-prefixed files (writes in progress) are ignored, as pyarrow does; any
    other file (a note, a copy a user left there) is named on stderr and left out, so one
    stray file does not stop the report."""
    found: list[str] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        found.extend(os.path.join(root, n) for n in sorted(names)
                     if not n.startswith((".", "_")))
    files = [f for f in found if f.endswith(".parquet")]
    others = [f for f in found if not f.endswith(".parquet")]
    if others:
        sys.stderr.write(f"newsbeam report: left out {len(others)} file(s) under {folder} "
                         f"that are not .parquet: {', '.join(others[:3])}"
                         f"{', ...' if len(others) > 3 else ''}\n")
    if not files:
        return None
    return ds.dataset(files, format="parquet", partitioning=partitioning,
                      partition_base_dir=folder)


def _decode(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


def read_column_counts(out_dir: str, dataset_name: str, column: str) -> Counter[str] | None:
    """All-time counts of one column of OUT/duplicates or OUT/rejects (``method``,
    ``reason``); None when the folder is absent or empty."""
    folder = os.path.join(out_dir, dataset_name)
    if not os.path.isdir(folder):
        return None
    dataset = _parquet_dataset(folder)
    if dataset is None or column not in dataset.schema.names:
        return None
    values = dataset.to_table(columns=[column]).column(column)
    return Counter(_labels(values, "(none)"))


# --- rendering ------------------------------------------------------------------------------

def _e(value: object) -> str:
    """Text for HTML (element content and quoted attribute values)."""
    return html.escape(str(value), quote=True)


def _t(value: object) -> str:
    """Text for a plotly label: plotly renders <b>, <a href>... in labels and decodes
    entities, so escaping shows the data as the plain text it is."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _num(value: float | int | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:,.{digits}f}"


def _nodata(text: str) -> str:
    return f'<p class="nodata">no data: {_e(text)}</p>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[tuple[str, bool]]],
           row_classes: Sequence[str] | None = None) -> str:
    """An HTML table. Cells are (already escaped html, numeric) pairs."""
    head = ("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead>"
            if any(headers) else "")
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"
                        for text, numeric in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


def _figure_html(figure: Any, div_id: str) -> str:
    """A plotly figure as a <div> and the script that draws it (plotly.js is in <head>)."""
    figure.update_layout(template="plotly_white", margin={"l": 10, "r": 10, "t": 40, "b": 10})
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)
    div: str = figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                              config=PLOTLY_CONFIG, default_height="100%")
    height = int(figure.layout.height or 420)
    return f'<div class="chart" style="height:{height}px">{div}</div>'


def _count_axis(largest: int) -> dict[str, Any]:
    """Axis settings for counts: whole-number ticks when the numbers are small."""
    return {"rangemode": "tozero", **({"dtick": 1} if largest <= 10 else {})}


def _stacked_bars(series: dict[str, dict[str, int]], x_order: Sequence[str], title: str,
                  x_title: str, y_title: str, div_id: str) -> str:
    """One bar per x (a category: days or run ids), stacked by series."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    figure = go.Figure()
    for name, values in series.items():
        figure.add_bar(name=_t(name), x=[_t(x) for x in x_order],
                       y=[values.get(x, 0) for x in x_order])
    largest = max((sum(v.get(x, 0) for v in series.values()) for x in x_order), default=0)
    figure.update_layout(barmode="stack", title=_t(title), height=420,
                         colorway=qualitative.Dark24 if len(series) > 10 else None)
    figure.update_xaxes(title=_t(x_title), type="category", categoryorder="array",
                        categoryarray=[_t(x) for x in x_order])
    figure.update_yaxes(title=_t(y_title), **_count_axis(largest))
    return _figure_html(figure, div_id)


def _horizontal_bars(counts: list[tuple[str, int]], title: str, x_title: str,
                     div_id: str) -> str:
    import plotly.graph_objects as go

    labels = [_t(label) for label, _ in reversed(counts)]
    values = [n for _, n in reversed(counts)]
    figure = go.Figure(go.Bar(x=values, y=labels, orientation="h", text=values,
                              textposition="auto"))
    figure.update_layout(title=_t(title), height=max(260, 60 + 24 * len(counts)))
    figure.update_xaxes(title=_t(x_title), **_count_axis(max(values, default=0)))
    figure.update_yaxes(type="category")
    return _figure_html(figure, div_id)


def _top(counter: Counter[str], n: int, other: str | None = None) -> list[tuple[str, int]]:
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    head = ranked[:n]
    rest = sum(count for _, count in ranked[n:])
    if other is not None and rest:
        head.append((f"{other} ({len(ranked) - n})", rest))
    return head


def section_summary(stats: ArticleStats | None, history: RunHistory,
                    duplicates: Counter[str] | None, rejects: Counter[str] | None) -> str:
    rows: list[list[tuple[str, bool]]] = []
    if stats is not None:
        days = sorted(d for d, _ in stats.per_day_source if d != NO_DATE)
        rows += [
            [("articles (latest revision of each)", False), (_num(stats.articles), True)],
            [("rows in OUT/articles (all revisions)", False), (_num(stats.rows), True)],
            [("sources", False), (_num(len(stats.coverage)), True)],
            [("days", False), (_e(f"{days[0]} to {days[-1]}") if days else "", False)],
        ]
    else:
        rows.append([("articles", False), ("0", True)])
    rows += [
        [("duplicates (all time)", False), (_num(sum(duplicates.values())) if duplicates
                                            else "0", True)],
        [("rejects (all time)", False), (_num(sum(rejects.values())) if rejects else "0",
                                         True)],
        [("runs", False), (_num(len(history.runs)), True)],
    ]
    parts = ['<section id="summary"><h2>Summary</h2>',
             _table(["", ""], rows)]
    if stats is not None and stats.missing_columns:
        parts.append(f'<p class="note">columns absent from this dataset (an older schema): '
                     f'{_e(", ".join(stats.missing_columns))}</p>')
    if history.unreadable:
        parts.append(f'<p class="note">manifests that could not be read: '
                     f'{_e(", ".join(history.unreadable))}</p>')
    versions = history.runs[-1].versions if history.runs else {}
    if versions:
        parts.append(f"<h3>Versions of the latest run ({_e(history.runs[-1].run_id)})</h3>")
        parts.append(_table(["library", "version"],
                            [[(_e(k), False), (_e(v), False)] for k, v in versions.items()]))
    parts.append("</section>")
    return "".join(parts)


def section_articles_per_day(stats: ArticleStats | None) -> str:
    head = '<section id="articles-per-day"><h2>Articles per day per source</h2>'
    if stats is None or not stats.per_day_source:
        return head + _nodata("no articles yet") + "</section>"
    by_source: Counter[str] = Counter()
    for (_, source), n in stats.per_day_source.items():
        by_source[source] += n
    top = [s for s, _ in _top(by_source, TOP_SOURCES_PER_DAY)]
    others = len(by_source) - len(top)
    other_name = f"other sources ({others})"
    series: dict[str, dict[str, int]] = {name: Counter() for name in top}
    for (day, source), n in stats.per_day_source.items():
        key = source if source in series else other_name
        series.setdefault(key, Counter())[day] += n
    days = sorted({day for day, _ in stats.per_day_source})
    # One bar per day that has articles, evenly spaced: on a date axis a backfilled archive
    # years old squeezes the recent days into hairlines.
    chart = _stacked_bars(series, days, "Articles per day (date of published_at, else of "
                          "ingestion), by source", "day", "articles", "chart-articles-per-day")
    note = ('<p class="note">One bar per day that has articles; days without any are left '
            f"out. Days: {len(days)}, sources: {len(by_source)}"
            + (f" (the {len(top)} largest shown apart)" if others else "") + ".</p>")
    return head + chart + note + "</section>"


def section_languages_countries(stats: ArticleStats | None) -> str:
    parts = ['<section id="languages"><h2>Languages</h2>']
    if stats is None or not stats.languages:
        parts.append(_nodata("no articles with a language column yet"))
    else:
        parts.append(_horizontal_bars(_top(stats.languages, TOP_LANGUAGES, "other"),
                                      "Articles per language (ISO 639-1)", "articles",
                                      "chart-languages"))
    parts.append('</section><section id="countries"><h2>Countries mentioned</h2>')
    if stats is None or not stats.countries:
        parts.append(_nodata("no article names a country yet"))
    else:
        parts.append(_horizontal_bars(_top(stats.countries, TOP_COUNTRIES),
                                      f"Articles naming each country (top {TOP_COUNTRIES}, "
                                      "ISO 3166-1 alpha-2)", "articles", "chart-countries"))
    parts.append("</section>")
    return "".join(parts)


def _per_run_series(runs: list[RunRecord], attribute: str) -> dict[str, dict[str, int]]:
    series: dict[str, dict[str, int]] = {}
    for run in runs:
        for name, n in getattr(run, attribute).items():
            series.setdefault(name, {})[run.run_id] = n
    return dict(sorted(series.items()))


def section_duplicates_rejects(history: RunHistory, duplicates: Counter[str] | None,
                               rejects: Counter[str] | None) -> str:
    parts = ['<section id="duplicates-rejects"><h2>Duplicates and rejects over time</h2>']
    run_ids = [run.run_id for run in history.runs]
    for attribute, what, div_id, folder, column, totals in (
        ("rejects_by_reason", "Rejects by reason", "chart-rejects", "rejects", "reason",
         rejects),
        ("duplicates_by_method", "Duplicates by method", "chart-duplicates", "duplicates",
         "method", duplicates),
    ):
        series = _per_run_series(history.runs, attribute)
        if not series:
            parts.append(f"<h3>{_e(what)}</h3>")
            parts.append(_nodata("no run recorded any" if history.runs else "no runs yet"))
        else:
            parts.append(_stacked_bars(series, run_ids, f"{what}, per run", "run (by start "
                                       "time)", folder, div_id))
        if totals:
            parts.append(f'<p class="note">All time, from OUT/{folder}:</p>')
            parts.append(_table([column, "rows"], [[(_e(k), False), (_num(n), True)]
                                                   for k, n in _top(totals, MAX_TABLE_ROWS,
                                                                    "other")]))
    parts.append("</section>")
    return "".join(parts)


def section_coverage(stats: ArticleStats | None) -> str:
    parts = ['<section id="field-coverage"><h2>Field coverage per source</h2>']
    fields = [f for f in COVERAGE_FIELDS if stats is not None
              and f not in stats.missing_columns]
    if stats is None or not stats.coverage:
        return "".join(parts) + _nodata("no articles yet") + "</section>"
    if not fields:
        return "".join(parts) + _nodata(f"none of {', '.join(COVERAGE_FIELDS)} is a column "
                                        "of this dataset") + "</section>"
    import plotly.graph_objects as go

    shown = stats.coverage[:TOP_SOURCES_HEATMAP]
    z = [[round(c.share(f), 4) for f in fields] for c in reversed(shown)]
    figure = go.Figure(go.Heatmap(
        z=z, x=list(fields), y=[f"{_t(c.source)} ({c.articles})" for c in reversed(shown)],
        zmin=0, zmax=1, colorscale="Blues", texttemplate="%{z:.0%}",
        hovertemplate="%{y}<br>%{x}: %{z:.0%}<extra></extra>",
        colorbar={"title": {"text": "share"}, "tickformat": ".0%"}))
    figure.update_layout(title="Share of each source's articles that have the field",
                         height=max(280, 120 + 26 * len(shown)))
    figure.update_yaxes(type="category")
    parts.append(_figure_html(figure, "chart-coverage"))
    if len(stats.coverage) > len(shown):
        parts.append(f'<p class="note">The chart shows the {len(shown)} largest of '
                     f"{len(stats.coverage)} sources.</p>")
    rows = []
    for c in stats.coverage[:MAX_TABLE_ROWS]:
        row = [(_e(c.source), False), (_num(c.articles), True)]
        row += [(f"{_num(100 * c.share(f), 0)}%", True) for f in fields]
        rows.append(row)
    parts.append(_table(["source", "articles", *fields], rows))
    if len(stats.coverage) > MAX_TABLE_ROWS:
        parts.append(f'<p class="note">{len(stats.coverage) - MAX_TABLE_ROWS} smaller sources '
                     "not listed.</p>")
    parts.append("</section>")
    return "".join(parts)


def section_runs(history: RunHistory) -> str:
    parts = ['<section id="runs"><h2>Run history</h2>']
    if not history.runs:
        parts.append(_nodata("no run manifest in OUT/_runs"))
    else:
        newest = list(reversed(history.runs))[:MAX_TABLE_ROWS]
        rows = [[(_e(r.run_id), False), (_e(r.started_at), False),
                 (_num(r.duration_s, 1), True),
                 *[(_num(r.counts.get(k)), True)
                   for k in ("in", "articles", "duplicates", "rejects")],
                 (_e(r.status), False)] for r in newest]
        parts.append(_table(["run_id", "started_at", "duration_s", "in", "articles",
                             "duplicates", "rejects", "status"], rows,
                            ["" if r.status == "ok" else "bad" for r in newest]))
        if len(history.runs) > MAX_TABLE_ROWS:
            parts.append(f'<p class="note">the {MAX_TABLE_ROWS} newest of '
                         f"{len(history.runs)} runs</p>")
    if history.streams:
        parts.append(f'<p class="note">{history.streams} stream manifests (their windows '
                     "are listed as runs)</p>")
    parts.append("</section>")
    return "".join(parts)


SECTIONS = (("summary", "Summary"), ("articles-per-day", "Articles per day"),
            ("languages", "Languages"), ("countries", "Countries"),
            ("duplicates-rejects", "Duplicates and rejects"),
            ("field-coverage", "Field coverage"), ("runs", "Run history"))


def has_dataset(out_dir: str) -> bool:
    return os.path.isdir(out_dir) and any(
        os.path.isdir(os.path.join(out_dir, name)) for name in DATASET_FOLDERS)


def build_report(out_dir: str, generated_at: datetime | None = None) -> str:
    """The report on the dataset in ``out_dir`` as one HTML document (str). Raises NoDataset
    when the folder holds none. ``generated_at`` (default now) is the only input besides
    the folder: the same dataset and time give the same page, byte for byte."""
    if not has_dataset(out_dir):
        raise NoDataset(f"no newsbeam dataset in {out_dir} (none of "
                        f"{', '.join(d + '/' for d in DATASET_FOLDERS)})")
    from plotly.offline import get_plotlyjs

    generated = (generated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    stats = read_articles(out_dir)
    history = read_runs(out_dir)
    duplicates = read_column_counts(out_dir, "duplicates", "method")
    rejects = read_column_counts(out_dir, "rejects", "reason")

    latest = history.runs[-1].versions if history.runs else {}
    newsbeam_version = latest.get("newsbeam") or (stats.written_by if stats else None)
    schema_version = stats.schema_version if stats else None
    meta = [f"dataset <code>{_e(os.path.abspath(out_dir))}</code>",
            f"generated at {_e(generated.isoformat(timespec='seconds'))}",
            f"newsbeam {_e(newsbeam_version or 'unknown')}",
            f"schema version {_e(schema_version or 'unknown')}"]
    nav = "".join(f'<a href="#{key}">{_e(label)}</a>' for key, label in SECTIONS)
    body = "".join([
        section_summary(stats, history, duplicates, rejects),
        section_articles_per_day(stats),
        section_languages_countries(stats),
        section_duplicates_rejects(history, duplicates, rejects),
        section_coverage(stats),
        section_runs(history),
    ])
    title = f"newsbeam report: {os.path.basename(os.path.abspath(out_dir))}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="newsbeam {_e(newsbeam_version or "")}">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        "</head>\n<body>\n"
        f"<header><h1>{_e(title)}</h1><p class=\"meta\">{' · '.join(meta)}</p>"
        f"<nav>{nav}</nav></header>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def write_report(out_dir: str, path: str, generated_at: datetime | None = None) -> str:
    """Write the report to ``path`` (temporary name in the same folder, then rename, so a
    reader never opens half a page) and return the path written."""
    text = build_report(out_dir, generated_at)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=".report-", suffix=".html.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return path


# --- command line ---------------------------------------------------------------------------

def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``newsbeam report``."""
    parser.add_argument("out_dir", metavar="OUT", help="a newsbeam output directory")
    parser.add_argument("-o", "--output", dest="report_path", default="report.html",
                        metavar="FILE", help="the HTML file to write (default report.html); "
                                             "self-contained: it loads nothing from the network")


def main_report(args: argparse.Namespace) -> int:
    """``newsbeam report OUT [--output FILE]``: 0 written; 2 (one line on stderr) when OUT
    holds no dataset or FILE's folder does not exist; 1 when writing fails."""
    out_dir: str = args.out_dir
    path: str = args.report_path
    if "://" not in out_dir and not os.path.isdir(out_dir):
        sys.stderr.write(f"newsbeam: error: {out_dir} does not exist"
                         f"{'' if not os.path.exists(out_dir) else ' as a folder'}\n")
        return EXIT_USAGE
    if not has_dataset(out_dir):
        sys.stderr.write(f"newsbeam: error: no newsbeam dataset in {out_dir} (none of "
                         f"{', '.join(d + '/' for d in DATASET_FOLDERS)})\n")
        return EXIT_USAGE
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        sys.stderr.write(f"newsbeam: error: --output: folder {folder} does not exist\n")
        return EXIT_USAGE
    try:
        write_report(out_dir, path)
    except pa.ArrowException as exc:  # a damaged .parquet file: pyarrow names it
        sys.stderr.write(f"newsbeam: error: cannot read the dataset in {out_dir}: "
                         f"{error_line(exc) or type(exc).__name__}\n")
        return EXIT_FAILED
    except OSError as exc:
        sys.stderr.write(f"newsbeam: error: cannot write {path}: {exc.strerror or exc}\n")
        return EXIT_FAILED
    print(f"newsbeam report: wrote {path} ({os.path.getsize(path) // 1024:,} KB)")
    return EXIT_OK
