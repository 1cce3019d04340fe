"""workspace: staff and guests, deactivated accounts, password resets, archived plans

Revision ID: 0004_workspace
Revises: 0003_access
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_workspace"
down_revision = "0003_access"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("is_staff", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("deactivated_at", TS, nullable=True))
    # Existing accounts: the workspace owner and anyone who created a plan or is on the vendor
    # side of one stay staff; everyone else joined as a customer and becomes a guest.
    op.execute(
        "UPDATE users SET is_staff = false WHERE is_owner = false"
        " AND id NOT IN (SELECT created_by FROM plans WHERE created_by IS NOT NULL)"
        " AND id NOT IN (SELECT user_id FROM plan_members WHERE side = 'vendor')"
        " AND id IN (SELECT user_id FROM plan_members)"
    )
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("archived_at", TS, nullable=True))
    op.create_table(
        "password_resets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_password_resets_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_password_resets"),
    )
    op.create_index("ix_password_resets_user_id", "password_resets", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_password_resets_user_id", table_name="password_resets")
    op.drop_table("password_resets")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("archived_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("deactivated_at")
        batch.drop_column("is_staff")
