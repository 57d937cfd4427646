#!/usr/bin/env python3
"""Top 10 containers by p99 CPU across every node, with Spark (PySpark, S3A).

    spark-submit --jars hadoop-aws-3.5.0.jar,bundle-2.35.4.jar,analyticsaccelerator-s3-1.3.1.jar \\
        examples/queries/spark/top_cpu_p99.py --bucket fgm-history --prefix prod-eu \\
        --from 2026-12-01T14:00:00Z --to 2026-12-01T14:05:00Z
    # or plain `python` with pyspark installed and --jars-dir pointing at those jars

The S3A settings are in `session()`: endpoint, path-style access, keys from
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or a web identity / instance role
through the default AWS credential chain when they are unset). The jars match
the Hadoop that pyspark 4.3 ships (3.5.0: hadoop-aws 3.5.0 and the AWS SDK
bundle 2.35.4 it was built with). Prints one JSON object per row.
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
    metrics = spark.read.option("basePath", root).option("mergeSchema", "true").parquet(*files)
    w = Window.partitionBy("node", "container_id").orderBy("timestamp")
    samples = (
        metrics.where(F.col("timestamp").between(F.lit(frm), F.lit(to)))
        .select(
            "node",
            "container_id",
            (
                (F.col("cpu_usage_usec") - F.lag("cpu_usage_usec").over(w))
                / 1e6
                / (F.col("timestamp").cast("double") - F.lag("timestamp").over(w).cast("double"))
            ).alias("cores"),
        )
        .where(F.col("cores").isNotNull() & (F.col("cores") >= 0))
    )
    top = (
        samples.groupBy("node", "container_id")
        .agg(
            F.round(F.percentile("cores", 0.99), 4).alias("p99_cores"),
            F.round(F.max("cores"), 4).alias("max_cores"),
            F.count("*").alias("samples"),
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
