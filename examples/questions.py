"""A few questions a reader of newsbeam's output asks, answered with pandas.

    ./run_local.sh                       # ingest samples/ into ./out
    python examples/questions.py out     # then ask

Each answer is a small DataFrame; the script prints them.
"""

from __future__ import annotations

import sys

import pandas as pd


def load(out: str) -> pd.DataFrame:
    df = pd.read_parquet(f"{out}/articles")
    df["date"] = pd.to_datetime(df["date"].astype(str)).dt.date
    return df


def articles_per_day_per_source(df: pd.DataFrame) -> pd.DataFrame:
    return (df.fillna({"source": "(unknown)"}).groupby(["date", "source"], observed=True).size()
            .rename("articles").reset_index().sort_values(["date", "source"]))


def top_countries(df: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    return (df.explode("countries").dropna(subset=["countries"])
            .groupby("countries").size().rename("articles")
            .sort_values(ascending=False, kind="stable").head(n).reset_index()
            .rename(columns={"countries": "country"}))


def most_quoted_speakers(df: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    quotes = df.explode("quotes").dropna(subset=["quotes"])
    speakers = quotes["quotes"].map(lambda q: q["speaker"]).dropna()
    return (speakers.value_counts().rename("quotes").head(n).rename_axis("speaker")
            .reset_index())


def latest_revisions(df: pd.DataFrame) -> pd.DataFrame:
    # one line: the latest version of each article
    return df.sort_values("revision").drop_duplicates("article_id", keep="last")


def main(out: str = "out") -> int:
    df = load(out)
    pd.set_option("display.width", 120)
    print("Articles per day per source\n", articles_per_day_per_source(df).to_string(index=False))
    print("\nTop countries mentioned\n", top_countries(df).to_string(index=False))
    print("\nMost-quoted speakers\n", most_quoted_speakers(df).to_string(index=False))
    latest = latest_revisions(df)
    print(f"\nLatest revision of each article: {len(latest)} articles "
          f"({len(df) - len(latest)} older revisions left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
