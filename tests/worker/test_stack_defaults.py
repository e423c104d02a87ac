"""`cotdistill up`'s defaults: how many training workers, and how the CPU cores are shared out."""

import os

from worker import stack


def test_a_cpu_only_machine_gets_two_one_thread_workers(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert stack.default_workers() == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert stack.default_workers() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert stack.default_workers() == 2


def test_one_worker_per_gpu(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert stack.default_workers() == 4
    assert stack.Stack(app=False).workers == 4


def test_workers_share_the_cores_unless_the_user_set_threads(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert stack.worker_env(2)["OMP_NUM_THREADS"] == "4"
    assert stack.worker_env(16)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert stack.worker_env(2)["OMP_NUM_THREADS"] == "3"
