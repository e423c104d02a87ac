"""initial schema: rationale sets, examples, experiments, runs, metrics, predictions, attributions

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-27 21:56:17.249470
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('factors', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments')),
    sa.UniqueConstraint('name', name=op.f('uq_experiments_name'))
    )
    op.create_table('rationale_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('dataset', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=True),
    sa.Column('decoding', sa.JSON(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('teacher_accuracy', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rationale_sets')),
    sa.UniqueConstraint('content_hash', name=op.f('uq_rationale_sets_content_hash'))
    )
    op.create_table('attributions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('method', sa.String(length=50), nullable=False),
    sa.Column('rationale_set_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rationale_set_id'], ['rationale_sets.id'], name=op.f('fk_attributions_rationale_set_id_rationale_sets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attributions'))
    )
    op.create_table('examples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rationale_set_id', sa.Integer(), nullable=False),
    sa.Column('example_id', sa.String(length=200), nullable=False),
    sa.Column('split', sa.String(length=50), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=True),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('rationale', sa.Text(), nullable=True),
    sa.Column('teacher_label', sa.String(length=200), nullable=True),
    sa.Column('teacher_correct', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['rationale_set_id'], ['rationale_sets.id'], name=op.f('fk_examples_rationale_set_id_rationale_sets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_examples')),
    sa.UniqueConstraint('rationale_set_id', 'split', 'example_id', name=op.f('uq_examples_rationale_set_id'))
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('config_hash', sa.String(length=64), nullable=False),
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
    sa.Column('accuracy', sa.Float(), nullable=True),
    sa.Column('artifact_uri', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_runs_experiment_id_experiments'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_config_hash'), ['config_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_experiment_id'), ['experiment_id'], unique=False)
        batch_op.create_index('ix_runs_status_heartbeat', ['status', 'heartbeat_at'], unique=False)

    op.create_table('attribution_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attribution_id', sa.Integer(), nullable=False),
    sa.Column('example_id', sa.String(length=200), nullable=False),
    sa.Column('tokens', sa.JSON(), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['attribution_id'], ['attributions.id'], name=op.f('fk_attribution_scores_attribution_id_attributions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attribution_scores')),
    sa.UniqueConstraint('attribution_id', 'example_id', name=op.f('uq_attribution_scores_attribution_id'))
    )
    op.create_table('metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_metrics_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metrics')),
    sa.UniqueConstraint('run_id', 'step', 'name', name=op.f('uq_metrics_run_id'))
    )
    op.create_table('predictions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('example_id', sa.String(length=200), nullable=False),
    sa.Column('predicted', sa.String(length=200), nullable=True),
    sa.Column('correct', sa.Boolean(), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=True),
    sa.Column('generated', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_predictions_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions')),
    sa.UniqueConstraint('run_id', 'example_id', name=op.f('uq_predictions_run_id'))
    )


def downgrade() -> None:
    op.drop_table('predictions')
    op.drop_table('metrics')
    op.drop_table('attribution_scores')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_status_heartbeat')
        batch_op.drop_index(batch_op.f('ix_runs_experiment_id'))
        batch_op.drop_index(batch_op.f('ix_runs_config_hash'))

    op.drop_table('runs')
    op.drop_table('examples')
    op.drop_table('attributions')
    op.drop_table('rationale_sets')
    op.drop_table('experiments')
