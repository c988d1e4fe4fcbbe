"""Runs, artifacts and results with their headline latency columns.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tag", sa.String(200)),
        sa.Column("argv", sa.JSON, nullable=False),
        sa.Column("cwd", sa.Text),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("host", sa.JSON, nullable=False),
        sa.Column("versions", sa.JSON, nullable=False),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_index("ix_runs_tag", "runs", ["tag"])
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("model", sa.String(300)),
        sa.Column("recipe", sa.String(200)),
        sa.Column("source_sha256", sa.String(64)),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("gzip_bytes", sa.BigInteger),
        sa.Column("sidecar", sa.JSON),
        sa.UniqueConstraint("sha256", "path", name="uq_artifacts_sha256_path"),
    )
    op.create_index("ix_artifacts_sha256", "artifacts", ["sha256"])
    op.create_table(
        "results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("artifact", sa.Text, nullable=False),
        sa.Column("artifact_sha256", sa.String(64)),
        sa.Column("model", sa.String(300)),
        sa.Column("recipe", sa.String(200)),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("delegate", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("p50_ms", sa.Float),
        sa.Column("mean_ms", sa.Float),
        sa.Column("init_ms", sa.Float),
        sa.Column("peak_memory_mb", sa.Float),
        sa.Column("document", sa.JSON, nullable=False),
    )
    for col in ("run_id", "created_at", "kind", "artifact", "model", "recipe", "target", "delegate", "status"):
        op.create_index(f"ix_results_{col}", "results", [col])


def downgrade() -> None:
    op.drop_table("results")
    op.drop_table("artifacts")
    op.drop_table("runs")
