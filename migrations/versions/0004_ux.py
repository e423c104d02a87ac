"""workers: each worker process's presence (queues, concurrency, heartbeat), for the Runs screen's
"why is this run waiting"

Revision ID: 0004_ux
Revises: 0003
Create Date: 2026-12-03 06:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_ux'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('workers',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('queues', sa.JSON(), nullable=False),
    sa.Column('concurrency', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_workers'))
    )


def downgrade() -> None:
    op.drop_table('workers')
