"""history segments: each history_snapshots row holds the log's updates after after_id up to
upto_id as one update (a row written before this holds the whole state: after 0); cached
sessions dropped (cut differently now)

Revision ID: 0011_history_segments
Revises: 0010_notification_preferences
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_history_segments"
down_revision = "0010_notification_preferences"
branch_labels = None
depends_on = None

LogId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("history_snapshots") as batch:
        batch.add_column(sa.Column("after_id", LogId, nullable=False, server_default="0"))
    # Sessions are now cut where the log passes a multiple of 3,000 updates, not 3,000 after
    # a run's start: the cached ones (derived) are read again when asked for.
    op.execute("DELETE FROM history_sessions")


def downgrade() -> None:
    with op.batch_alter_table("history_snapshots") as batch:
        batch.drop_column("after_id")
