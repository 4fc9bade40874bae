"""An OUT written by an older newsbeam (signature format 1, schema version 5) keeps catching
near copies after the upgrade to format 2.

``tests/fixtures/format1_out`` is a real output of newsbeam at commit 44ad789 (the last one
with format 1), run on ``tests/fixtures/format1_input.jsonl``: four stories, three of them
ending in one shared footer (so the old index holds core bands too)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.reindex import old_index_files, upgrade_index
from tests.conftest import REPO
from tests.pipeline.test_cli import INGESTED_AT, newsbeam

FIXTURE = REPO / "tests" / "fixtures" / "format1_out"
INPUT = REPO / "tests" / "fixtures" / "format1_input.jsonl"


def old_out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(FIXTURE, out)
    return out


def stored(name: str) -> dict:
    for line in INPUT.read_text().splitlines():
        row = json.loads(line)
        if row["url"].endswith("/" + name):
            return row
    raise KeyError(name)


def stored_ids(out: Path) -> dict[str, str]:
    table = ds.dataset(out / "articles", format="parquet", partitioning="hive").to_table(
        columns=["url", "article_id"])
    return dict(zip(table.column("url").to_pylist(), table.column("article_id").to_pylist(),
                    strict=True))


def index_table(out: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted((out / "_index").glob("*.parquet")))


def test_the_fixture_is_format_1(tmp_path: Path) -> None:
    out = old_out(tmp_path)
    assert [Path(p).name for p in old_index_files(str(out))] == \
        [p.name for p in (out / "_index").glob("*.parquet")]
    meta = pq.read_schema(next((out / "_index").glob("*.parquet"))).metadata
    assert meta[b"newsbeam.schema_version"] == b"5"


def test_a_run_upgrades_the_index_and_catches_copies_of_old_articles(tmp_path: Path) -> None:
    out = old_out(tmp_path)
    ids = stored_ids(out)
    harbour, orchard = stored("harbour"), stored("orchard")
    # a partner's copy of a story that carried the shared footer: without it, a word changed
    harbour_text = harbour["text"].rsplit("\n\n", 1)[0].replace("Tuesday", "Wednesday")
    batch = [
        {"url": "https://partner.example/sea-wall", "title": "Sea wall approved",
         "text": harbour_text},
        {"url": "https://partner.example/apples", "title": "Apples",
         "text": orchard["text"].replace("record", "bumper")},
        {"url": "https://partner.example/museum", "title": "Museum",
         "text": "The maritime museum will open a new hall in the old rope factory next "
                 "spring, with two restored fishing boats and a workshop where visitors can "
                 "watch carpenters repair wooden hulls the traditional way."},
    ]
    new = tmp_path / "batch2.jsonl"
    new.write_text("\n".join(json.dumps(r) for r in batch) + "\n")
    proc = newsbeam("run", str(new), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    assert "upgrading them from the stored articles" in proc.stderr
    dups = ds.dataset(out / "duplicates", format="parquet", partitioning="hive").to_table()
    found = {(r["url"], r["duplicate_of"], r["method"]) for r in dups.to_pylist()}
    assert found == {
        ("https://partner.example/sea-wall", ids["https://old.example/harbour"], "near"),
        ("https://partner.example/apples", ids["https://old.example/orchard"], "near"),
    }
    assert set(stored_ids(out)) == {*ids, "https://partner.example/museum"}
    # every index file is format 2 now; the old rows are all there, with their new signatures
    assert old_index_files(str(out)) == []
    index = index_table(out)
    assert pa.types.is_uint64(index.schema.field("bands").type.value_type)
    rows = {r["article_id"]: r for r in index.to_pylist()}
    assert len(rows) == index.num_rows == 5
    for article_id in ids.values():
        assert len(rows[article_id]["shingles"]) > 20 and len(rows[article_id]["bands"]) >= 32
    # the stories with the shared footer got core bands beside their full-text bands
    assert len(rows[ids["https://old.example/harbour"]]["bands"]) > 40
    # a second run finds nothing left to upgrade
    again = newsbeam("run", str(new), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert again.returncode == 0, again.stderr
    assert "upgrading" not in again.stderr
    assert "articles          0" in again.stdout


def test_an_upgrade_cut_short_is_finished_by_the_next_without_losing_rows(tmp_path: Path
                                                                          ) -> None:
    out = old_out(tmp_path)
    old_file = next((out / "_index").glob("*.parquet"))
    saved = old_file.read_bytes()
    assert upgrade_index(str(out), None) == 4
    upgraded = sorted((out / "_index").glob("*.parquet"))
    assert len(upgraded) == 1 and upgraded[0].name.endswith("-v8.parquet")
    # killed after writing the new file and before deleting the old one
    old_file.write_bytes(saved)
    assert upgrade_index(str(out), None) == 4
    assert sorted((out / "_index").glob("*.parquet")) == upgraded
    assert index_table(out).num_rows == 4
    assert upgrade_index(str(out), None) == 0


def test_an_index_row_without_stored_text_keeps_its_exact_keys(tmp_path: Path) -> None:
    out = old_out(tmp_path)
    for part in (out / "articles").glob("date=2024-03-04"):
        shutil.rmtree(part)  # the orchard story's file, removed by hand
    upgrade_index(str(out), None)
    rows = {r["url"]: r for r in index_table(out).to_pylist()}
    assert len(rows) == 4
    assert rows["https://old.example/orchard"]["shingles"] == []
    assert rows["https://old.example/orchard"]["content_hash"]
    assert rows["https://old.example/harbour"]["shingles"]


def test_damaged_files_never_stop_a_run(tmp_path: Path) -> None:
    """An article file that cannot be read, and an index file from before revisions: the
    upgrade goes on without them (logged), and the run still works."""
    out = old_out(tmp_path)
    (out / "articles" / "date=2024-03-04" / "part-broken.parquet").write_bytes(b"garbage")
    index_file = next((out / "_index").glob("*.parquet"))
    table = pq.read_table(index_file)
    pq.write_table(table.drop_columns(["revision"]).replace_schema_metadata(
        table.schema.metadata), index_file)
    assert upgrade_index(str(out), None) == 4
    index = index_table(out)
    assert index.column("revision").to_pylist() == [1, 1, 1, 1]
    assert old_index_files(str(out)) == []
    # a damaged index file is left as it is: the upgrade does not fail on it
    (out / "_index" / "part-damaged.parquet").write_bytes(b"garbage")
    assert upgrade_index(str(out), None) == 0


def test_an_index_from_before_schema_7_gets_its_paragraph_digests(tmp_path: Path) -> None:
    """Schema version 6 had no ``paragraphs``. Such an index (made here from a current one by
    dropping the column, which is all that changed) is upgraded on the next start: the
    digests come back as a run writes them, the signatures stay the same, and no row is lost."""
    out = tmp_path / "out"
    proc = newsbeam("run", str(INPUT), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    current = index_table(out).sort_by("article_id")
    assert old_index_files(str(out)) == []
    for path in (out / "_index").glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["paragraphs"]).replace_schema_metadata(
            {**table.schema.metadata, b"newsbeam.schema_version": b"6"}), path)
    assert len(old_index_files(str(out))) == len(list((out / "_index").glob("*.parquet")))
    assert upgrade_index(str(out), None) == current.num_rows
    assert old_index_files(str(out)) == []
    upgraded = index_table(out).sort_by("article_id")
    for column in ("article_id", "paragraphs", "shingles", "bands", "content_hash"):
        assert upgraded.column(column).to_pylist() == current.column(column).to_pylist()
    assert any(len(p) for p in upgraded.column("paragraphs").to_pylist())


def test_a_version_6_row_without_stored_text_keeps_its_signature(tmp_path: Path) -> None:
    """Its shingles and bands were already of the current format: an upgrade that cannot
    find its text (its article file removed by hand) adds empty paragraphs and keeps them."""
    out = tmp_path / "out"
    proc = newsbeam("run", str(INPUT), "--output", str(out), "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    current = index_table(out).sort_by("article_id")
    for path in (out / "_index").glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["paragraphs"]), path)
    for path in (out / "articles").rglob("*.parquet"):
        path.unlink()  # every text gone
    assert upgrade_index(str(out), None) == current.num_rows
    upgraded = index_table(out).sort_by("article_id")
    for column in ("shingles", "bands"):
        assert upgraded.column(column).to_pylist() == current.column(column).to_pylist()
    assert all(p == [] for p in upgraded.column("paragraphs").to_pylist())


def test_a_later_run_names_a_changed_title_also_over_an_index_from_before_schema_8(
        tmp_path: Path) -> None:
    """A story at one URL, run after run with a new title and text: each revision's `changes`
    names the title (across runs the stored version had no title to compare with, so only
    "text" was named). An index from before schema version 8 (no ``title``: made here from a
    current one by dropping the column) gets the stored titles on the next start."""
    def record(title: str, words: str) -> str:
        return json.dumps({"url": "https://news.example/story", "title": title,
                           "text": " ".join(f"{words}{k} line{k % 9}." for k in range(80)),
                           "published": "2024-03-04T10:00:00Z"}) + "\n"

    out = tmp_path / "out"
    for n, (title, words) in enumerate([("Story v1", "alpha"), ("Story v2", "bravo"),
                                        ("Story v3", "charlie")], 1):
        src = tmp_path / f"rev{n}.jsonl"
        src.write_text(record(title, words))
        if n == 2:  # the index as schema version 7 wrote it
            for path in (out / "_index").glob("*.parquet"):
                table = pq.read_table(path)
                pq.write_table(table.drop_columns(["title"]), path)
            assert len(old_index_files(str(out))) == 1
        proc = newsbeam("run", str(src), "--output", str(out), "--ingested-at", INGESTED_AT)
        assert proc.returncode == 0, proc.stderr
    assert old_index_files(str(out)) == []
    articles = ds.dataset(out / "articles", format="parquet", partitioning="hive").to_table(
        columns=["title", "revision", "changes"]).to_pylist()
    assert sorted((a["revision"], a["title"], a["changes"]) for a in articles) == [
        (1, "Story v1", []), (2, "Story v2", ["title", "text"]),
        (3, "Story v3", ["title", "text"])]
    assert sorted(index_table(out).column("title").to_pylist()) == [
        "Story v1", "Story v2", "Story v3"]
