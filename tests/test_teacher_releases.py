"""`fetch_release` against a local mirror over real HTTP (never the internet): sizes checked,
interrupted downloads resumed, a wrong file refused, and offline mode that downloads nothing."""

import functools
import shutil
import threading
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cotdistill.data import data_dir, load_examples
from cotdistill.data.releases import MIRROR_ENV, RELEASES, fetch_release, instructions
from cotdistill.errors import FetchError

SVAMP = RELEASES["svamp-dsbs"]


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A static file server laid out like raw.githubusercontent.com, holding svamp-dsbs."""
    root = tmp_path / "mirror"
    folder = root / SVAMP.repo / SVAMP.commit / SVAMP.path
    shutil.copytree(data_dir() / "svamp-dsbs", folder, ignore=shutil.ignore_patterns("SOURCE.md"))
    hits = Counter()

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            hits[self.path.rsplit("/", 1)[-1]] += 1
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}")
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    yield folder, hits
    server.shutdown()
    server.server_close()


def test_fetch_downloads_checks_sizes_and_the_release_loads(mirror, tmp_path):
    folder, hits = mirror
    path = fetch_release("svamp-dsbs", tmp_path / "data")
    assert path == tmp_path / "data" / "svamp-dsbs"
    for rel in SVAMP.files:
        assert (path / rel).read_bytes() == (folder / rel).read_bytes()
    assert (path / "FETCHED.json").exists() and sum(hits.values()) == len(SVAMP.files)
    assert len(load_examples("svamp-dsbs", "train", data_dir=tmp_path / "data")) == 800
    assert fetch_release("svamp-dsbs", tmp_path / "data") == path          # complete: no download
    assert sum(hits.values()) == len(SVAMP.files)


def test_a_wrong_file_is_refused_and_a_rerun_fetches_only_what_is_missing(mirror, tmp_path):
    folder, hits = mirror
    good = (folder / "svamp_test.json").read_bytes()
    (folder / "svamp_test.json").chmod(0o644)
    (folder / "svamp_test.json").write_bytes(good[:-10])
    with pytest.raises(FetchError, match="svamp_test.json has 41,328 bytes, expected 41,338"):
        fetch_release("svamp-dsbs", tmp_path / "data")
    assert not (tmp_path / "data" / "svamp-dsbs").exists()
    (folder / "svamp_test.json").write_bytes(good)
    before = sum(hits.values())
    fetch_release("svamp-dsbs", tmp_path / "data")
    assert sum(hits.values()) - before < len(SVAMP.files) and hits["svamp_test.json"] == 2


def test_offline_or_unreachable_says_where_to_put_the_files(tmp_path, monkeypatch):
    with pytest.raises(FetchError, match="offline mode is on") as e:
        fetch_release("commonsenseqa-dsbs", tmp_path)                    # conftest: offline
    for rel in RELEASES["commonsenseqa-dsbs"].files:
        assert f"-> {tmp_path / 'commonsenseqa-dsbs' / rel}" in str(e.value)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9")                  # nothing listens
    with pytest.raises(FetchError, match="could not download .*put them here"):
        fetch_release("svamp-dsbs", tmp_path, timeout=2)
    assert f"download these {len(SVAMP.files)} files" in instructions("svamp-dsbs", tmp_path)


def test_manifest_matches_the_local_copies():
    """The sizes in the manifest are those of ../shared/data (and of the SOURCE.md tables)."""
    for name, release in RELEASES.items():
        for rel, size in release.files.items():
            assert (data_dir() / name / rel).stat().st_size == size, (name, rel)
