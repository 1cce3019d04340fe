"""notification clock: how far the weekly digests' passes have looked, so a pass after the
clock stood still sends the digests it missed

Revision ID: 0012_notification_clock
Revises: 0011_history_segments
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_notification_clock"
down_revision = "0011_history_segments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_clock",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("through", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_notification_clock"),
    )


def downgrade() -> None:
    op.drop_table("notification_clock")
