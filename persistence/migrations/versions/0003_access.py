"""access: members, invites, share links, one-time codes, access events, outbox, internal doc

Revision ID: 0003_access
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_access"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
LOG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("plan_updates") as batch:
        batch.add_column(sa.Column("doc", sa.String(16), nullable=False, server_default="plan"))
        batch.create_index("ix_plan_updates_plan_id_doc_id", ["plan_id", "doc", "id"])
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("doc", sa.String(16), nullable=False, server_default="plan"))

    op.create_table(
        "plan_members",
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name="fk_plan_members_plan_id_plans", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_plan_members_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("plan_id", "user_id", name="pk_plan_members"),
    )
    op.create_index("ix_plan_members_user_id", "plan_members", ["user_id"])
    op.create_table(
        "invites",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("invited_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("accepted_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name="fk_invites_plan_id_plans", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invited_by"], ["users.id"], name="fk_invites_invited_by_users", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_invites"),
    )
    op.create_index("ix_invites_plan_id", "invites", ["plan_id"])
    op.create_table(
        "share_links",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("domain", sa.String(253), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name="fk_share_links_plan_id_plans", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name="fk_share_links_created_by_users", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_share_links"),
    )
    op.create_index("ix_share_links_plan_id", "share_links", ["plan_id"])
    op.create_table(
        "email_codes",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("link_id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["link_id"], ["share_links.id"], name="fk_email_codes_link_id_share_links", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_email_codes"),
    )
    op.create_table(
        "access_events",
        sa.Column("id", LOG_ID, autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.String(32), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(400), nullable=False),
        sa.Column("subject", sa.String(400), nullable=True),
        sa.Column("detail", sa.String(400), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name="fk_access_events_plan_id_plans", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_access_events"),
    )
    op.create_index("ix_access_events_plan_id", "access_events", ["plan_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("to_addr", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("error", sa.String(400), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    # Existing plans: their creators become owners on the vendor side.
    op.execute(
        "INSERT INTO plan_members (plan_id, user_id, role, side, added_at) "
        "SELECT id, created_by, 'owner', 'vendor', created_at FROM plans WHERE created_by IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_index("ix_access_events_plan_id", "access_events")
    op.drop_table("access_events")
    op.drop_table("email_codes")
    op.drop_index("ix_share_links_plan_id", "share_links")
    op.drop_table("share_links")
    op.drop_index("ix_invites_plan_id", "invites")
    op.drop_table("invites")
    op.drop_index("ix_plan_members_user_id", "plan_members")
    op.drop_table("plan_members")
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("doc")
    with op.batch_alter_table("plan_updates") as batch:
        batch.drop_index("ix_plan_updates_plan_id_doc_id")
        batch.drop_column("doc")
