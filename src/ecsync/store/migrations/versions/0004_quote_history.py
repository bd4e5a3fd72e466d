"""products keep what the last full quote implied for probes, and their change history

``buy_box_present``, ``buy_box_landed`` and ``new_offer_count``: the view a
getCompetitivePricing probe is compared with (null: the quote did not say). ``quote_changes``
and ``observed_s``: how often the ASIN's price or availability moved over how many seconds of
good quotes, from which the refresh scheduler learns its change rate. Existing rows start
with no history (0, 0): the scheduler's prior covers them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("buy_box_present", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column("buy_box_landed", sa.Numeric(precision=14, scale=2), nullable=True)
        )
        batch_op.add_column(sa.Column("new_offer_count", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("quote_changes", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("observed_s", sa.Float(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("observed_s")
        batch_op.drop_column("quote_changes")
        batch_op.drop_column("new_offer_count")
        batch_op.drop_column("buy_box_landed")
        batch_op.drop_column("buy_box_present")
