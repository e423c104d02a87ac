"""The job system: database models and sessions, the jobs API, Celery app and tasks, the reconciler.

Calls the science core (`cotdistill`) through one entry point per job kind; the core never imports it.
"""
