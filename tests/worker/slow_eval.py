"""Imported first by a worker subprocess of a test (JobStack.start_worker(prelude=...)): every
evaluation batch in score mode takes $COTDISTILL_TEST_EVAL_DELAY seconds more, a slow evaluation
without a large model."""

import os
import time

from cotdistill.evaluate import evaluation

_score_batch = evaluation.score_batch


def slow_score_batch(*args, **kwargs):
    time.sleep(float(os.environ["COTDISTILL_TEST_EVAL_DELAY"]))
    return _score_batch(*args, **kwargs)


evaluation.score_batch = slow_score_batch
