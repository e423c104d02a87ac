"""The jobs API: plain functions returning plain data (dicts, lists), for the app and the CLI.

    submit_matrix("configs/matrix-cqa.yaml")        # {experiment_id, queued, reused, kept}
    list_runs(experiment="cqa-placements")          # one dict per cell, with status and progress
    compare([1, 2, 3, 4])                           # accuracy per arm, mean ± 95% interval over seeds
    paired([1, 2], [3, 4])                          # A − B: seeds as the unit first, then the test set
    versus_reference([1, 2, 3, 4], "none")          # every arm against one, Holm over the comparisons
    report_zip("cqa-placements")                    # the experiment's report files as one zip
    start_selftest(); selftest_status()             # the control suite on the workers
    cancel(7); retry(7); requeue_failed("cqa-placements")

Parts: worker/api/runs.py (runs, experiments, comparisons), verdicts.py (every arm against a
reference arm), estimate.py (memory and GPU-hours
before launch), jobs.py (jobs, attributions, the
key-token study), reports.py (experiment reports), sets.py (teachers and rationale sets), imports.py
(importing your own rationale files from the browser), selftest.py (the control suite), core.py
(sessions). The caller never opens a database session: each function opens and closes its own, on the
database of $COTDISTILL_DATABASE_URL (default SQLite under $COTDISTILL_HOME), migrated on first use.
"""

from cotdistill.names import name_problem  # noqa: F401  (the app checks names as the API will)
from worker.api.core import NotFound, database_problem, parse_yaml, session  # noqa: F401
from worker.api.runs import (  # noqa: F401
    submit_matrix, cancel, retry, requeue_failed, preview, list_datasets, dataset_examples,
    arm_key, run_row, list_experiments, list_runs, run_detail, curves, predictions, prediction_counts,
    run_accuracy, compare, paired, launch_options, plan_matrix, mode_diagnostics, list_workers,
    experiment_estimate,
)
from worker.api.estimate import estimate_matrix, measured_tokens_per_s, model_shapes  # noqa: F401
from worker.api.jobs import (  # noqa: F401
    submit_job, submit_attribution, list_jobs, job_detail, cancel_job, retry_job, list_attributions,
    attribution_scores, key_token_study, key_token_study_matrix, attributed_examples, key_token_stats, FUNCTION_WORDS,
)
from worker.api.reports import report_zip  # noqa: F401
from worker.api.verdicts import versus_reference, seed_budget, reference_choices, default_reference  # noqa: F401
from worker.api.selftest import start_selftest, selftest_status  # noqa: F401
from worker.api.sets import (  # noqa: F401
    submit_generation, generation_outputs, register_rationale_set, list_rationale_sets,
    rationale_set_examples, compare_rationale_sets, prompt_templates, prompt_problem,
)
from worker.api.imports import (  # noqa: F401
    import_choices, save_upload, preview_import, import_rationale_set, rationale_set_report, dataset_report,
    IMPORT_OPTIONS,
)
