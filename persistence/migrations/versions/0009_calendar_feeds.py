"""calendar feeds: one secret (hashed) calendar URL per person

Revision ID: 0009_calendar_feeds
Revises: 0008_slack
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_calendar_feeds"
down_revision = "0008_slack"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_calendar_feeds_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_calendar_feeds"),
        sa.UniqueConstraint("secret_hash", name="uq_calendar_feeds_secret_hash"),
    )


def downgrade() -> None:
    op.drop_table("calendar_feeds")
