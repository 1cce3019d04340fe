"""slack: a plan's Slack incoming-webhook URL

Revision ID: 0008_slack
Revises: 0007_notifications
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_slack"
down_revision = "0007_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_slack",
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("webhook_url", sa.String(500), nullable=False),
        sa.Column("set_by", sa.Integer(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name="fk_plan_slack_plan_id_plans", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("plan_id", name="pk_plan_slack"),
    )


def downgrade() -> None:
    op.drop_table("plan_slack")
