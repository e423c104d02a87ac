"""jobs (rationale generation, attribution) and the lineage columns they fill

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 23:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('total_steps', sa.Integer(), nullable=True),
    sa.Column('progress', sa.JSON(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.Column('artifact_uri', sa.String(length=1000), nullable=True),
    sa.Column('task_id', sa.String(length=64), nullable=True),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_index('ix_jobs_status_heartbeat', 'jobs', ['status', 'heartbeat_at'], unique=False)
    with op.batch_alter_table('rationale_sets') as batch:
        batch.add_column(sa.Column('provenance', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('path', sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column('n_examples', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('n_unparsed', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('job_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_rationale_sets_job_id_jobs'), 'jobs', ['job_id'], ['id'],
                                 ondelete='SET NULL')
    with op.batch_alter_table('attributions') as batch:
        batch.add_column(sa.Column('dataset', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('params', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('job_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_attributions_job_id_jobs'), 'jobs', ['job_id'], ['id'],
                                 ondelete='SET NULL')
    with op.batch_alter_table('attribution_scores') as batch:
        batch.add_column(sa.Column('words', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('word_scores', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('completeness_error', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('attribution_scores') as batch:
        batch.drop_column('completeness_error')
        batch.drop_column('word_scores')
        batch.drop_column('words')
    with op.batch_alter_table('attributions') as batch:
        batch.drop_constraint(op.f('fk_attributions_job_id_jobs'), type_='foreignkey')
        batch.drop_column('job_id')
        batch.drop_column('params')
        batch.drop_column('dataset')
    with op.batch_alter_table('rationale_sets') as batch:
        batch.drop_constraint(op.f('fk_rationale_sets_job_id_jobs'), type_='foreignkey')
        batch.drop_column('job_id')
        batch.drop_column('n_unparsed')
        batch.drop_column('n_examples')
        batch.drop_column('path')
        batch.drop_column('provenance')
    op.drop_index('ix_jobs_status_heartbeat', table_name='jobs')
    op.drop_table('jobs')
