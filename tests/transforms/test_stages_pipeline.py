"""Each composite under TestPipeline: its output and its rejects, on the sample corpus."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Article, RawDocument, Reject, Unit
from tests.conftest import FIXED_NOW, SAMPLES
from transforms.common import Sink
from transforms.extract import ExtractArticles
from transforms.parse import ParseDocuments
from transforms.read import ReadSources


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _reject_key(r: Reject) -> tuple[str, str, str]:
    return (_name(r.input_path), r.stage, r.reason)


def _doc_name(d: RawDocument) -> str:
    return _name(d.input_path)


def _unit_key(u: Unit) -> tuple[str, str]:
    return (_name(u.input_path), u.input_kind)


def _title(a: Article) -> str:
    return a.title or ""


def test_read_sources_outputs_and_rejects() -> None:
    paths = [str(SAMPLES / n) for n in ("junk/empty.txt", "junk/corrupt.xml.gz",
                                         "feeds/harbour-archive.rss.xml.gz",
                                         "kazakhstan_peacemaker.txt")]
    paths.append(str(SAMPLES / "does-not-exist.xml"))
    with TestPipeline() as p:
        with Sink("Rejects", beam.Map(_reject_key)) as rejects:
            docs = p | beam.Create(paths) | ReadSources(rejects)
        assert_that(docs | beam.Map(_doc_name),
                    equal_to(["harbour-archive.rss.xml.gz", "kazakhstan_peacemaker.txt"]),
                    label="Docs")
        assert_that(rejects.output(), equal_to([
            ("empty.txt", "read", "empty_file"),
            ("corrupt.xml.gz", "read", "decompress_error"),
            ("does-not-exist.xml", "read", "read_error"),
        ]), label="Rejects")


def test_parse_documents_outputs_and_rejects() -> None:
    names = ["junk/binary-blob.xml", "junk/laughs.xml", "junk/note.xml", "junk/no-items.rss.xml",
             "feeds/marine-science.rdf", "feeds/island-sport.json"]
    docs = [RawDocument(str(SAMPLES / n), (SAMPLES / n).read_bytes()) for n in names]
    with TestPipeline() as p:
        with Sink("Rejects", beam.Map(_reject_key)) as rejects:
            units = p | beam.Create(docs) | ParseDocuments(rejects)
        assert_that(units | beam.Map(_unit_key), equal_to(
            [("marine-science.rdf", "rdf")] * 2 + [("island-sport.json", "jsonfeed")] * 3),
            label="Units")
        assert_that(rejects.output(), equal_to([
            ("binary-blob.xml", "parse", "binary_content"),
            ("laughs.xml", "parse", "xml_entities"),
            ("note.xml", "parse", "not_a_feed"),
            ("no-items.rss.xml", "parse", "empty_feed"),
        ]), label="Rejects")


def test_extract_articles_outputs_and_rejects() -> None:
    path = str(SAMPLES / "dumps" / "crawl-2024-03.jsonl")
    lines = (SAMPLES / "dumps" / "crawl-2024-03.jsonl").read_text().splitlines()
    units = [Unit(path, "jsonl", i, raw=line) for i, line in enumerate(lines) if line.strip()]
    with TestPipeline() as p:
        with Sink("Rejects", beam.Map(_reject_key)) as rejects:
            articles = p | beam.Create(units) | ExtractArticles(rejects, FIXED_NOW)
        assert_that(articles | beam.Map(_title), equal_to([
            "Spring market returns to the square", "Storm warning for the outer coast", "",
            "Ice closes northern harbour for the first time in a decade",
        ]), label="Articles")
        assert_that(rejects.output(), equal_to([
            ("crawl-2024-03.jsonl", "extract", "invalid_json"),
            ("crawl-2024-03.jsonl", "extract", "invalid_record"),
        ]), label="Rejects")
