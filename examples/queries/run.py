#!/usr/bin/env python3
"""Run a cluster-wide query over the exported bucket with DuckDB.

    python examples/queries/run.py examples/queries/duckdb/top_cpu_p99.sql \\
        --bucket fgm-history --prefix prod/eu --endpoint https://s3.eu-west-1.amazonaws.com \\
        --from 2026-12-01T14:00:00Z --to 2026-12-01T14:05:00Z

Keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN).
Prints one JSON object per row (--format json, default) or CSV. Needs the pip
packages in requirements.txt (duckdb and its httpfs extension; nothing is
downloaded at run time).
"""
import argparse
import csv
import datetime as dt
import json
import os
import pathlib
import sys
import time
import urllib.parse

import duckdb

HERE = pathlib.Path(__file__).resolve().parent


def quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """httpfs from the duckdb-extension-httpfs package when installed, else DuckDB's own install."""
    try:
        import duckdb_extension_httpfs  # type: ignore

        base = pathlib.Path(duckdb_extension_httpfs.__file__).parent / "extensions"
        files = sorted(base.glob(f"v{duckdb.__version__}/httpfs.duckdb_extension"))
        if files:
            con.execute(f"LOAD {quote(str(files[0]))}")
            return
    except ImportError:
        pass
    con.execute("INSTALL httpfs")
    con.execute("LOAD httpfs")


# Which .sql files define the views and macros a query may name (creating a view reads the
# footers of its files, so only those the query names are created).
DERIVED_NAMES = ("fgm_rates", "fgm_summar", "fgm_histograms", "fgm_percentiles", "fgm_bucket",
                 "fgm_hour_start", "fgm_whole_hours", "fgm_hours_end", "fgm_underived",
                 "fgm_delta", "fgm_usec_per_usec", "fgm_per_second")


# The other per-node datasets: a view fgm_<name> each (fgm_dataset.sql).
DATASETS = ("network", "devices", "processes")


def connect(bucket: str, prefix: str, endpoint: str | None, region: str, days: str,
            path_style: bool, frm: dt.datetime, to: dt.datetime,
            query: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Timestamps are UTC everywhere (the files, the keys, the agents).
    con.execute("SET TimeZone = 'UTC'")
    # Footers read once: creating a view reads some, the query binds the views again.
    con.execute("SET parquet_metadata_cache = true")
    load_httpfs(con)
    options = [
        "TYPE s3",
        f"KEY_ID {quote(os.environ.get('AWS_ACCESS_KEY_ID', ''))}",
        f"SECRET {quote(os.environ.get('AWS_SECRET_ACCESS_KEY', ''))}",
        f"REGION {quote(region)}",
    ]
    if os.environ.get("AWS_SESSION_TOKEN"):
        options.append(f"SESSION_TOKEN {quote(os.environ['AWS_SESSION_TOKEN'])}")
    if endpoint:
        url = urllib.parse.urlsplit(endpoint)
        options.append(f"ENDPOINT {quote(url.netloc + url.path.rstrip('/'))}")
        options.append(f"USE_SSL {'true' if url.scheme == 'https' else 'false'}")
    if path_style:
        options.append("URL_STYLE 'path'")
    con.execute(f"CREATE SECRET fgm ({', '.join(options)})")
    root = f"s3://{bucket}" + (f"/{prefix.strip('/')}" if prefix.strip("/") else "")
    con.execute(f"SET VARIABLE fgm_root = {quote(root)}")
    con.execute(f"SET VARIABLE fgm_days = {quote(days)}")
    con.execute(f"SET VARIABLE fgm_from = TIMESTAMPTZ {quote(frm.isoformat())}")
    con.execute(f"SET VARIABLE fgm_to = TIMESTAMPTZ {quote(to.isoformat())}")
    con.execute((HERE / "duckdb" / "fgm.sql").read_text())
    if not con.execute("SELECT len(getvariable('fgm_files'))").fetchone()[0]:
        raise SystemExit(f"no data files under {root}/dt={days}/ (check --bucket, --prefix and the range)")
    if "fgm_metrics" in query:
        con.execute((HERE / "duckdb" / "fgm_metrics.sql").read_text())
    if any(name in query for name in DERIVED_NAMES):
        # The SQL derivation of the rows compaction has not derived, or an empty one when
        # there are none (then the views take their columns from compaction's objects).
        underived = con.execute("SELECT len(getvariable('fgm_underived_files'))").fetchone()[0]
        load_split(con, "fgm_derive.sql", bool(underived))
        # The views of the files compaction derived, or of the SQL derivation alone when it
        # has derived nothing in the listed days yet.
        derived = con.execute("SELECT len(getvariable('fgm_rates_files'))").fetchone()[0]
        if derived:
            check_format(con)
        load_split(con, "fgm_rates.sql", bool(derived))
        con.execute((HERE / "duckdb" / "fgm_summaries.sql").read_text())
    # The other datasets' views, each from its own listing, when the query names them.
    for name in DATASETS:
        if f"fgm_{name}" not in query:
            continue
        con.execute((HERE / "duckdb" / "fgm_dataset.sql").read_text().replace("__DATASET__", name))
        if not con.execute(f"SELECT len(getvariable('fgm_{name}_files'))").fetchone()[0]:
            raise SystemExit(f"no {name} files under {root}/{name}/dt={days}/ (the agents record "
                             f"them from this release on; processes only where enabled)")
        con.execute(f"CREATE OR REPLACE TEMP VIEW fgm_{name} AS SELECT * FROM read_parquet("
                    f"getvariable('fgm_{name}_files'), hive_partitioning = true, union_by_name = true)")
    # The JSON views, or empty ones when the bucket holds no such file (no pod ever failed, say).
    for name in ("containers", "events"):
        pattern = f"{root}/dt={days}/node=*/{name}.jsonl"
        found = con.execute(f"SELECT count(*) FROM glob({quote(pattern)})").fetchone()[0]
        load_split(con, f"fgm_{name}.sql", bool(found))
    return con


# Format version of the rates and summaries objects these views read (fgm.format_version).
FORMAT_VERSION = 1


def check_format(con: duckdb.DuckDBPyConnection) -> None:
    """Refuses rates and summaries of a newer format (the newest object of each, by key: the
    first of fgm.sql's lists, whose footer the views read anyway)."""
    for variable in ("fgm_rates_files", "fgm_summaries_files"):
        newest = con.execute(f"SELECT getvariable('{variable}')[1]").fetchone()[0]
        row = con.execute(
            f"SELECT decode(value) FROM parquet_kv_metadata({quote(newest)}) "
            "WHERE decode(key) = 'fgm.format_version'"
        ).fetchone()
        if row and int(row[0]) > FORMAT_VERSION:
            raise SystemExit(f"{newest} has format version {row[0]}; these queries read version "
                             f"{FORMAT_VERSION}: update examples/queries")


def load_split(con: duckdb.DuckDBPyConnection, file: str, with_files: bool) -> None:
    """Runs the part of `file` before "-- when there are no files:" or the part after it;
    a part before "-- with files:", when there is one, runs either way."""
    text = (HERE / "duckdb" / file).read_text()
    common, _, text = text.rpartition("-- with files:")
    with_part, without = text.split("-- when there are no files:")
    con.execute(common + (with_part if with_files else without))


def parse_time(s: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def days_glob(frm: dt.datetime, to: dt.datetime) -> str:
    """The dt= directories of the range (and the day before): '*' when they span months."""
    first, last = (frm - dt.timedelta(days=1)).date(), to.date()
    if first == last:
        return first.isoformat()
    if (first.year, first.month) == (last.year, last.month):
        return f"{first:%Y-%m}-*"
    return "*"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("query", type=pathlib.Path, help="a .sql file (see examples/queries/duckdb)")
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", default="")
    ap.add_argument("--endpoint", help="S3-compatible endpoint URL [default: AWS]")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--path-style", action="store_true")
    ap.add_argument("--from", dest="frm", required=True, help="RFC 3339 start of the range")
    ap.add_argument("--to", required=True, help="RFC 3339 end of the range")
    ap.add_argument("--format", choices=["json", "csv"], default="json")
    ap.add_argument("--timing", action="store_true", help="print the query time to stderr")
    ap.add_argument("--profile", action="store_true",
                    help="run it under EXPLAIN ANALYZE and print the plan, with the bytes read, to stderr")
    args = ap.parse_args()
    frm, to = parse_time(args.frm), parse_time(args.to)
    query = args.query.read_text()
    set_up = time.perf_counter()
    con = connect(args.bucket, args.prefix, args.endpoint, args.region, days_glob(frm, to),
                  args.path_style, frm, to, query)
    if args.timing:
        print(f"set-up: {time.perf_counter() - set_up:.3f}s (listing, views)", file=sys.stderr)
    if args.profile:
        plan = con.execute("EXPLAIN ANALYZE " + query).fetchall()
        print("\n".join(str(r[-1]) for r in plan), file=sys.stderr)
    began = time.perf_counter()
    cur = con.execute(query)
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    if args.timing:
        print(f"query {args.query.name}: {time.perf_counter() - began:.3f}s, {len(rows)} rows", file=sys.stderr)
    if args.format == "csv":
        out = csv.writer(sys.stdout)
        out.writerow(names)
        out.writerows(rows)
    else:
        for row in rows:
            print(json.dumps(dict(zip(names, row)), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
