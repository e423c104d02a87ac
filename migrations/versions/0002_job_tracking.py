"""job tracking: the broker message of a run, when it was sent; an experiment's cells

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 23:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('task_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('experiments') as batch:
        batch.add_column(sa.Column('base', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('cells', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('experiments') as batch:
        batch.drop_column('cells')
        batch.drop_column('base')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('enqueued_at')
        batch.drop_column('task_id')
