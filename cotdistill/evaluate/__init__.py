"""Evaluating a trained student: one record per test example by scoring or generation, with every
scoring of the placement's protocol (evaluation), and label-bias diagnostics of a run's answers
(diagnostics). May import statistics, students, sequences, the configuration and the bottom layer;
never training, the run orchestrator or anything above.
"""
