"""Accuracy headline columns (top-1 and its drop) and the per-cell index compare looks up.

Older rows are filled in from their stored Result documents.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("accuracy_top1", sa.Float))
        batch.add_column(sa.Column("accuracy_drop", sa.Float))
    op.create_index("ix_results_cell", "results", ["model", "recipe", "target", "delegate"])

    results = sa.table("results", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                       sa.column("document", sa.JSON), sa.column("accuracy_top1", sa.Float),
                       sa.column("accuracy_drop", sa.Float))
    bind = op.get_bind()
    rows = bind.execute(sa.select(results.c.id, results.c.document).where(results.c.kind == "eval")).all()
    for row_id, doc in rows:
        metrics = (doc or {}).get("metrics") or {}
        bind.execute(results.update().where(results.c.id == row_id).values(
            accuracy_top1=metrics.get("top1"), accuracy_drop=metrics.get("top1_drop")))


def downgrade() -> None:
    op.drop_index("ix_results_cell", "results")
    with op.batch_alter_table("results") as batch:
        batch.drop_column("accuracy_drop")
        batch.drop_column("accuracy_top1")
