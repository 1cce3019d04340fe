"""version history: named versions, replay snapshots, cached sessions, last visits; links that
show history

Revision ID: 0006_history
Revises: 0005_outbox_plan
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_history"
down_revision = "0005_outbox_plan"
branch_labels = None
depends_on = None

LogId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "plan_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("upto_id", LogId, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_plan_versions"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_plan_versions_plan_id_plans", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name="fk_plan_versions_created_by_users",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_plan_versions_plan_id_upto_id", "plan_versions", ["plan_id", "upto_id"])
    op.create_table(
        "history_snapshots",
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("doc", sa.String(16), nullable=False),
        sa.Column("upto_id", LogId, nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "doc", "upto_id", name="pk_history_snapshots"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_history_snapshots_plan_id_plans", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "history_sessions",
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("doc", sa.String(16), nullable=False),
        sa.Column("first_id", LogId, nullable=False),
        sa.Column("last_id", LogId, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updates", sa.Integer(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("text", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "doc", "first_id", name="pk_history_sessions"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_history_sessions_plan_id_plans", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "plan_visits",
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("seen_id", LogId, nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "user_id", name="pk_plan_visits"),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_plan_visits_plan_id_plans", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_plan_visits_user_id_users", ondelete="CASCADE"
        ),
    )
    with op.batch_alter_table("share_links") as batch:
        batch.add_column(
            sa.Column("history", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("share_links") as batch:
        batch.drop_column("history")
    op.drop_table("plan_visits")
    op.drop_table("history_sessions")
    op.drop_table("history_snapshots")
    op.drop_index("ix_plan_versions_plan_id_upto_id", "plan_versions")
    op.drop_table("plan_versions")
