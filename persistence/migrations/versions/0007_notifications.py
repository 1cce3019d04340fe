"""notifications: the outbox of notifications, used action links, unsubscribes, leases

Revision ID: 0007_notifications
Revises: 0006_history
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_notifications"
down_revision = "0006_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dedup_key", sa.String(300), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=True),
        sa.Column("recipient_email", sa.String(320), nullable=False),
        sa.Column("recipient_name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(400), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name="fk_notifications_plan_id_plans",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("dedup_key", name="uq_notifications_dedup_key"),
    )
    op.create_index("ix_notifications_plan_id", "notifications", ["plan_id"])
    op.create_index("ix_notifications_state_next", "notifications", ["state", "next_attempt_at"])
    op.create_table(
        "notification_actions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(400), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name="fk_notification_actions_plan_id_plans",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_notification_actions"),
    )
    op.create_index("ix_notification_actions_plan_id", "notification_actions", ["plan_id"])
    op.create_table(
        "notification_unsubscribes",
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email", "plan_id", "kind", name="pk_notification_unsubscribes"),
    )
    op.create_table(
        "notification_leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_notification_leases"),
    )


def downgrade() -> None:
    op.drop_table("notification_leases")
    op.drop_table("notification_unsubscribes")
    op.drop_index("ix_notification_actions_plan_id", "notification_actions")
    op.drop_table("notification_actions")
    op.drop_index("ix_notifications_state_next", "notifications")
    op.drop_index("ix_notifications_plan_id", "notifications")
    op.drop_table("notifications")
