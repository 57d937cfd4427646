#!/usr/bin/env python3
"""Top 10 containers by p99 CPU across every node, with Spark (PySpark, S3A).

    spark-submit --jars hadoop-aws-3.5.0.jar,bundle-2.35.4.jar,analyticsaccelerator-s3-1.3.1.jar \\
        examples/queries/spark/top_cpu_p99.py --bucket fgm-history --prefix prod-eu \\
        --from 2026-12-01T14:00:00Z --to 2026-12-01T14:05:00Z
    # or plain `python` with pyspark installed and --jars-dir pointing at those jars

The same question and answer as examples/queries/duckdb/top_cpu_p99.sql: a range
of whole hours (--from on the hour, --to on the hour or at hh:59:59) from the
hourly histograms compaction writes (p99 within 1 %), any other range from its
rates (exact p99); rows compaction has not derived yet get their rates here,
with the same arithmetic. The S3A settings are in `session()`: endpoint,
path-style access, keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or a
web identity / instance role through the default AWS credential chain when
they are unset). The jars match the Hadoop that pyspark 4.3 ships (3.5.0:
hadoop-aws 3.5.0 and the AWS SDK bundle 2.35.4 it was built with). Prints one
JSON object per row.
"""
import argparse
import datetime as dt
import json
import os
import pathlib
import re
import sys

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

RAW = re.compile(r"/node=([^/]+)/metrics-(\d{8}T\d{6}Z)\.parquet$")
MERGED = re.compile(r"/node=([^/]+)/merged-(\d{8}T\d{6}Z)-(\d{8}T\d{6}Z)\.parquet$")
DERIVED = re.compile(
    r"/(rates|summaries)/dt=([^/]+)/hour=(\d+)/node=([^/]+)/(?:rates|summaries)-(\d{8}T\d{6}Z)-(\d{8}T\d{6}Z)\.parquet$"
)
GAMMA = 1.01 / 0.99
ZERO_BUCKET = -2147483648


def visible(files: list[str]) -> list[str]:
    """Every row once, from one listing: merged files, and raw files no merged
    file of their node covers (the rule of examples/queries/duckdb/fgm.sql)."""
    merged = [(m.group(1), m.group(2), m.group(3)) for f in files if (m := MERGED.search(f))]
    keep = []
    for f in files:
        if MERGED.search(f):
            keep.append(f)
        elif r := RAW.search(f):
            node, start = r.group(1), r.group(2)
            if not any(n == node and first <= start <= last for n, first, last in merged):
                keep.append(f)
    return sorted(keep)


def derived(metrics: list[str], listed: list[str]) -> dict[str, list[tuple[str, dt.datetime, str]]]:
    """Merged file -> its (dataset, hour, object) list, for merged files whose rates AND
    summaries are listed (after the data files: compaction writes them before the merged
    file, one object of each per clock hour of its rows)."""
    found: dict[tuple[str, str, str], list[tuple[str, dt.datetime, str]]] = {}
    for f in listed:
        if d := DERIVED.search(f):
            hour = dt.datetime.fromisoformat(d.group(2)).replace(hour=int(d.group(3)), tzinfo=dt.timezone.utc)
            found.setdefault((d.group(4), d.group(5), d.group(6)), []).append((d.group(1), hour, f))
    out = {}
    for f in metrics:
        if m := MERGED.search(f):
            objects = found.get((m.group(1), m.group(2), m.group(3)), [])
            if {"rates", "summaries"} <= {o[0] for o in objects}:
                out[f] = objects
    return out


def session(args) -> SparkSession:
    builder = (
        SparkSession.builder.appName("fgm-top-cpu-p99")
        .master(os.environ.get("SPARK_MASTER", "local[2]"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.hadoop.fs.s3a.impl", "org.apache.hadoop.fs.s3a.S3AFileSystem")
        .config("spark.hadoop.fs.s3a.endpoint.region", args.region)
        .config("spark.hadoop.fs.s3a.path.style.access", str(args.path_style).lower())
    )
    if args.endpoint:
        builder = builder.config("spark.hadoop.fs.s3a.endpoint", args.endpoint).config(
            "spark.hadoop.fs.s3a.connection.ssl.enabled", str(args.endpoint.startswith("https")).lower()
        )
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        builder = (
            builder.config(
                "spark.hadoop.fs.s3a.aws.credentials.provider",
                "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
            )
            .config("spark.hadoop.fs.s3a.access.key", os.environ["AWS_ACCESS_KEY_ID"])
            .config("spark.hadoop.fs.s3a.secret.key", os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
        )
    if args.jars_dir:
        jars = sorted(str(p) for p in pathlib.Path(args.jars_dir).glob("*.jar"))
        builder = builder.config("spark.jars", ",".join(jars))
    return builder.getOrCreate()


def list_files(spark: SparkSession, pattern: str) -> list[str]:
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(pattern)
    statuses = path.getFileSystem(conf).globStatus(path) or []
    return [s.getPath().toString() for s in statuses]


def rates_here(spark: SparkSession, root: str, files: list[str]):
    """cpu_cores of the rows compaction has not derived, as it derives them:
    the counter's increase over the interval from the container's previous
    sample (null after a reset or a null), in µs per µs."""
    metrics = spark.read.option("basePath", root).option("mergeSchema", "true").parquet(*files)
    w = Window.partitionBy("node", "container_id").orderBy("timestamp")
    ms = F.unix_millis("timestamp")
    dt_ms = F.when(ms > F.lag(ms).over(w), ms - F.lag(ms).over(w))
    cur, prev = F.col("cpu_usage_usec"), F.lag("cpu_usage_usec").over(w)
    delta = F.when(cur >= prev, cur - prev)
    return metrics.select(
        "node",
        "container_id",
        "timestamp",
        (delta.cast("double") / (dt_ms.cast("double") * 1000.0)).alias("cpu_cores"),
    )


def bucket_value(b):
    return F.when(b == ZERO_BUCKET, F.lit(0.0)).otherwise(
        2 * F.pow(F.lit(GAMMA), b) / (F.lit(GAMMA) + 1)
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", default="")
    ap.add_argument("--endpoint")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--path-style", action="store_true")
    ap.add_argument("--jars-dir", help="directory of the S3A jars (instead of spark-submit --jars)")
    ap.add_argument("--from", dest="frm", required=True)
    ap.add_argument("--to", required=True)
    args = ap.parse_args()
    frm = dt.datetime.fromisoformat(args.frm.replace("Z", "+00:00"))
    to = dt.datetime.fromisoformat(args.to.replace("Z", "+00:00"))
    hours_end = (to + dt.timedelta(seconds=1)).replace(minute=0, second=0, microsecond=0)
    on_hour = lambda t: t == t.replace(minute=0, second=0, microsecond=0)  # noqa: E731
    whole_hours = on_hour(frm) and (on_hour(to) or on_hour(to + dt.timedelta(seconds=1))) and hours_end > frm
    root = f"s3a://{args.bucket}" + (f"/{args.prefix.strip('/')}" if args.prefix.strip("/") else "")
    spark = session(args)
    spark.sparkContext.setLogLevel("ERROR")
    days = sorted({(frm - dt.timedelta(days=1)).date() + dt.timedelta(days=i)
                   for i in range((to.date() - frm.date()).days + 2)})
    files = []
    for day in days:
        files += list_files(spark, f"{root}/dt={day.isoformat()}/node=*/*.parquet")
    files = visible(files)
    if not files:
        print(f"no data files under {root} for {days[0]}..{days[-1]}", file=sys.stderr)
        return 1
    listed = []
    for dataset in ("rates", "summaries"):
        for day in days:
            listed += list_files(spark, f"{root}/{dataset}/dt={day.isoformat()}/node=*/*.parquet")
    done = derived(files, listed)
    # The objects of the range's hours only: their keys say the hour of their rows.
    first_hour = frm.replace(minute=0, second=0, microsecond=0)
    objects = [o for objs in done.values() for o in objs if first_hour <= o[1] <= to]
    underived = [f for f in files if f not in done]
    here = rates_here(spark, root, underived) if underived else None
    if whole_hours:
        in_hours = (F.col("hour") >= F.lit(frm)) & (F.col("hour") < F.lit(hours_end))
        parts = []
        summary_files = sorted(f for d, h, f in objects if d == "summaries" and h < hours_end)
        if summary_files:
            parts.append(
                spark.read.option("basePath", f"{root}/summaries").parquet(*summary_files)
                .where(F.col("metric") == "cpu_cores")
                .select("node", "container_id", "bucket", "count", "min", "max")
            )
        if here is not None:
            v = F.col("cpu_cores")
            rows = here.where(v.isNotNull() & (v >= 0)).withColumn(
                "hour", F.date_trunc("hour", "timestamp")).where(in_hours)
            bucket = F.when(v == 0, F.lit(ZERO_BUCKET)).otherwise(
                F.ceil(F.log(v) / F.log(F.lit(GAMMA))).cast("int"))
            parts.append(rows.groupBy("node", "container_id").agg(
                F.lit(None).cast("int").alias("bucket"), F.count("*").alias("count"),
                F.min(v).alias("min"), F.max(v).alias("max")))
            parts.append(rows.groupBy("node", "container_id", bucket.alias("bucket")).agg(
                F.count("*").alias("count"), F.lit(None).cast("double").alias("min"),
                F.lit(None).cast("double").alias("max")))
        if not parts:
            print(f"no samples under {root} for {frm}..{to}", file=sys.stderr)
            return 1
        summary = parts[0]
        for p in parts[1:]:
            summary = summary.unionByName(p)
        hist = (summary.where(F.col("bucket").isNotNull())
                .groupBy("node", "container_id", "bucket").agg(F.sum("count").alias("count")))
        cw = Window.partitionBy("node", "container_id")
        running = F.sum("count").over(cw.orderBy("bucket").rowsBetween(Window.unboundedPreceding, 0))
        p99 = (hist.withColumn("running", running).withColumn("total", F.sum("count").over(cw))
               .groupBy("node", "container_id")
               .agg(F.min(F.when(F.col("running").cast("double") >= 0.99 * F.col("total").cast("double"),
                                 F.col("bucket"))).alias("bucket")))
        stats = (summary.where(F.col("bucket").isNull()).groupBy("node", "container_id")
                 .agg(F.min("min").alias("min"), F.max("max").alias("max"), F.sum("count").alias("samples")))
        # The bucket's value, kept within the samples' min and max (only closer).
        value = F.greatest(F.least(bucket_value(F.col("bucket")), F.col("max")), F.col("min"))
        top = p99.join(stats, ["node", "container_id"]).select(
            "node", "container_id", value.alias("p99"), "max", "samples")
    else:
        parts = []
        rate_files = sorted(f for d, _, f in objects if d == "rates")
        if rate_files:
            parts.append(spark.read.option("basePath", f"{root}/rates").option("mergeSchema", "true")
                         .parquet(*rate_files).select("node", "container_id", "timestamp", "cpu_cores"))
        if here is not None:
            parts.append(here)
        if not parts:
            print(f"no samples under {root} for {frm}..{to}", file=sys.stderr)
            return 1
        rates = parts[0]
        for p in parts[1:]:
            rates = rates.unionByName(p)
        top = (rates.where(F.col("timestamp").between(F.lit(frm), F.lit(to)) & F.col("cpu_cores").isNotNull())
               .groupBy("node", "container_id")
               .agg(F.percentile("cpu_cores", 0.99).alias("p99"), F.max("cpu_cores").alias("max"),
                    F.count("*").alias("samples")))
    top = (
        top.select(
            "node",
            "container_id",
            F.round("p99", 4).alias("p99_cores"),
            F.round("max", 4).alias("max_cores"),
            F.col("samples").cast("long").alias("samples"),
        )
        .orderBy(F.desc("p99_cores"), "node", "container_id")
        .limit(10)
    )
    for row in top.collect():
        print(json.dumps(row.asDict(), default=str))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
