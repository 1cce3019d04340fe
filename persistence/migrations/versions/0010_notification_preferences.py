"""notification preferences: a time zone and digest time per person, a mode per kind and plan

Revision ID: 0010_notification_preferences
Revises: 0009_calendar_feeds
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_notification_preferences"
down_revision = "0009_calendar_feeds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_settings",
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("digest_weekday", sa.Integer(), nullable=False),
        sa.Column("digest_hour", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email", name="pk_notification_settings"),
    )
    op.create_table(
        "notification_preferences",
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email", "plan_id", "kind", name="pk_notification_preferences"),
    )


def downgrade() -> None:
    op.drop_table("notification_preferences")
    op.drop_table("notification_settings")
