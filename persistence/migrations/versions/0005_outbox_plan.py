"""outbox: the plan a message belongs to, so deleting a plan deletes its mail

Revision ID: 0005_outbox_plan
Revises: 0004_workspace
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_outbox_plan"
down_revision = "0004_workspace"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("plan_id", sa.String(32), nullable=True))
        batch.create_index("ix_outbox_plan_id", ["plan_id"])
        batch.create_foreign_key(
            "fk_outbox_plan_id_plans", "plans", ["plan_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("fk_outbox_plan_id_plans", type_="foreignkey")
        batch.drop_index("ix_outbox_plan_id")
        batch.drop_column("plan_id")
