"""The embedded broker's messages appear whole (worker/fs_broker.py).

kombu's own filesystem transport creates a message file before writing it; a polling consumer could
take the empty file and die on `json.loads("")`. These tests use real kombu connections on a real
folder, with a writer in another process racing a reader.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from queue import Empty

import pytest
from kombu import Connection

import worker.celery_app  # noqa: F401  (registers the project's `filesystem` transport)
from worker.fs_broker import Transport

PAD = 4_000_000          # a write long enough for a polling reader to land inside it


def _options(folder):
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"), "store_processed": True,
            "control_folder": str(folder / "control"), "polling_interval": 0.001}


def _writer(folder, n):
    with Connection("filesystem://", transport_options=_options(folder)) as conn:
        q = conn.SimpleQueue("race")
        for i in range(n):
            q.put({"i": i, "pad": "x" * PAD})


def test_the_filesystem_alias_is_the_atomic_transport(tmp_path):
    with Connection("filesystem://", transport_options=_options(tmp_path)) as conn:
        assert isinstance(conn.transport, Transport)


def test_a_reader_racing_a_writer_gets_every_message_whole(tmp_path):
    n = 100
    proc = mp.get_context("spawn").Process(target=_writer, args=(tmp_path, n))
    proc.start()
    seen = []
    with Connection("filesystem://", transport_options=_options(tmp_path)) as conn:
        q = conn.SimpleQueue("race")
        while len(seen) < n:
            try:
                msg = q.get(timeout=30)
            except Empty:
                break
            seen.append(msg.payload["i"])
            assert len(msg.payload["pad"]) == PAD
            msg.ack()
    proc.join(30)
    assert proc.exitcode == 0
    assert sorted(seen) == list(range(n))
    assert not [p for p in (tmp_path / "queue").iterdir()], "no .part or message file is left behind"


def test_a_message_being_written_is_not_taken_and_a_broken_one_is_set_aside(tmp_path, caplog):
    opts = _options(tmp_path)
    queue = tmp_path / "queue"
    (queue / ".1_a.work.msg.part").write_bytes(b'{"half')          # a writer is still at it
    (queue / "2_b.work.msg").write_bytes(b"")                       # written by something else, empty
    with Connection("filesystem://", transport_options=opts) as conn:
        q = conn.SimpleQueue("work")
        q.put({"ok": 1})
        msg = q.get(timeout=5)
        assert msg.payload == {"ok": 1}
        msg.ack()
        with pytest.raises(Empty):
            q.get(timeout=0.2)
    assert (queue / ".1_a.work.msg.part").exists()
    assert (tmp_path / "processed" / "2_b.work.msg.bad").exists()
    assert "2_b.work.msg is not valid JSON" in caplog.text
    assert sorted(os.listdir(queue)) == [".1_a.work.msg.part"]
