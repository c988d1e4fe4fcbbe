"""The store's tables as they are at the newest migration (queries and writes use these).

The migrations in ``migrations/versions`` build exactly this schema step by step; a test checks
that a store made by the migrations and this metadata agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("tag", sa.String(200), index=True),
    sa.Column("argv", sa.JSON, nullable=False),
    sa.Column("cwd", sa.Text),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("host", sa.JSON, nullable=False),
    sa.Column("versions", sa.JSON, nullable=False),
)

artifacts = sa.Table(
    "artifacts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("model", sa.String(300)),
    sa.Column("recipe", sa.String(200)),
    sa.Column("source_sha256", sa.String(64)),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("gzip_bytes", sa.BigInteger),
    sa.Column("sidecar", sa.JSON),
    sa.UniqueConstraint("sha256", "path", name="uq_artifacts_sha256_path"),
)

results = sa.Table(
    "results", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False, index=True),
    sa.Column("artifact", sa.Text, nullable=False, index=True),
    sa.Column("artifact_sha256", sa.String(64)),
    sa.Column("model", sa.String(300), index=True),
    sa.Column("recipe", sa.String(200), index=True),
    sa.Column("target", sa.String(300), nullable=False, index=True),
    sa.Column("delegate", sa.String(50), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("p50_ms", sa.Float),
    sa.Column("mean_ms", sa.Float),
    sa.Column("init_ms", sa.Float),
    sa.Column("peak_memory_mb", sa.Float),
    # migration 0002: accuracy headline numbers and the cell index compare looks up
    sa.Column("accuracy_top1", sa.Float),
    sa.Column("accuracy_drop", sa.Float),
    sa.Column("document", sa.JSON, nullable=False),  # the whole Result, raw samples and log included
    sa.Index("ix_results_cell", "model", "recipe", "target", "delegate"),
)

# migration 0003: which farm run holds which phone (one row per leased phone; see store/leases.py)
device_leases = sa.Table(
    "device_leases", metadata,
    sa.Column("serial", sa.String(300), primary_key=True),
    sa.Column("holder", sa.String(300), nullable=False),
    sa.Column("token", sa.String(64), nullable=False),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),  # epoch seconds (the holder's wall clock)
    sa.Column("acquired_at", sa.Float, nullable=False),  # epoch seconds
)
