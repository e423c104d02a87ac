"""The OpenAI-compatible HTTP teacher against a real server on 127.0.0.1 (http.server in a
thread): parsing, retries (429 with Retry-After, 500, dropped connections, garbled bodies),
timeouts, final 4xx errors, resume after a stop or a crash, and the completion cache."""

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cotdistill.data import load_examples
from cotdistill.errors import DataError
from cotdistill.examples import Example
from cotdistill.data.store import open_rationale_set
from cotdistill.teachers import (Decoding, HttpTeacher, TeacherError, generate_rationales,
                                 load_teacher, make_prompt)

SECRET = "sk-test-very-secret-123"
COLOURS = ("red", "blue", "green")
PROMPT = make_prompt("multiple_choice")
GREEDY = Decoding(max_new_tokens=64)


class FakeOpenAI:
    """Canned answers per question; each request consumes the next action of its script (the
    last action repeats). Actions: ('ok', text), ('status', code, retry_after), ('slow', seconds,
    text), ('drop',), ('garbage',), ('raw', body bytes), ('drip', seconds per byte, body bytes),
    ('huge', megabytes) (a body of that size, streamed without a Content-Length)."""

    def __init__(self):
        self.script: dict[str, list[tuple]] = {}
        self.requests: Counter = Counter()
        self.seen: list[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def total(self) -> int:
        return sum(self.requests.values())

    def _next(self, question: str) -> tuple:
        with self.lock:
            self.requests[question] += 1
            actions = self.script.get(question) or [("ok", "No idea.")]
            return actions[min(self.requests[question], len(actions)) - 1]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body.get("prompt") or body["messages"][-1]["content"]
                question = [line for line in prompt.split("\n") if line.startswith("Q: ")][-1][3:]
                with fake.lock:
                    fake.seen.append({"path": self.path, "body": body,
                                      "auth": self.headers.get("Authorization")})
                self._act(fake._next(question))

            def _act(self, action):
                if action[0] == "drop":
                    self.close_connection = True
                    return
                if action[0] == "status":
                    self._send(action[1], b'{"error": "busy"}', action[2])
                elif action[0] == "garbage":
                    self._send(200, b"<html>proxy error</html>")
                elif action[0] == "raw":
                    self._send(200, action[1])
                elif action[0] == "drip":
                    self._drip(action[1], action[2])
                elif action[0] == "huge":
                    self._huge(action[1])
                else:
                    if action[0] == "slow":
                        time.sleep(action[1])
                    text = action[-1]
                    choice = ({"text": text} if self.path.endswith("/v1/completions")
                              else {"message": {"role": "assistant", "content": text}})
                    self._send(200, json.dumps({"choices": [choice]}).encode())

            def _send(self, code, payload, retry_after=None):
                try:
                    self.send_response(code)
                    if retry_after is not None:
                        self.send_header("Retry-After", retry_after)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:                  # the client timed out and hung up
                    pass

            def _drip(self, seconds, payload):
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    for byte in payload:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(seconds)
                except OSError:
                    pass

            def _huge(self, megabytes):
                try:
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b'{"choices": [{"text": "')
                    for _ in range(megabytes):
                        self.wfile.write(b"a" * (1 << 20))
                except OSError:                  # the client stopped reading at its cap
                    pass
                self.close_connection = True

        return Handler

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TEACHER_KEY", SECRET)
    return tmp_path / "home"


def examples(n):
    return [Example(id=f"q{i}", question=f"question {i}?", choices=COLOURS, label="abc"[i % 3])
            for i in range(1, n + 1)]


def teacher(server, **kw):
    options = {"api_key_env": "TEACHER_KEY", "backoff": 0.01, "max_retries": 3,
               "concurrency": 3, "timeout": 5.0, **kw}
    return HttpTeacher(server.url, "fake-model", **options)


def test_generation_parses_records_and_counts_unparsed(server, tmp_path, home):
    server.script = {
        "question 1?": [("ok", " The sky is blue. So the answer is (b).\n")],
        "question 2?": [("ok", " Guessing. So the answer is (a).")],            # wrong: gold c
        "question 3?": [("ok", " I cannot decide between them.")],              # no marker
        "question 4?": [("ok", " Blue it is. So the answer is Blue.")],         # choice text
        "question 5?": [("ok", " Hmm. So the answer is (z).")],                 # no such choice
        "question 6?": [("status", 400, None)],                                 # final error
    }
    out = tmp_path / "sets" / "fake"
    events = []
    result = generate_rationales({"train": examples(6)}, teacher(server), PROMPT, GREEDY, out,
                                 batch_size=4, dataset="toy", progress=events.append)
    assert result.set_path == out and result.done == 6 and not result.failed
    assert [e["done"] for e in events] == [4, 6] and events[-1]["teacher_accuracy"] == 2 / 6
    rs = open_rationale_set(out)
    by_id = {r["id"]: r for r in rs.records}
    assert by_id["q1"]["rationale"] == "The sky is blue." and by_id["q1"]["teacher_correct"]
    assert by_id["q2"]["teacher_label"] == "a" and by_id["q2"]["teacher_correct"] is False
    assert by_id["q3"]["teacher_label"] is None and by_id["q3"]["rationale"] is None
    assert by_id["q3"]["raw_output"] == " I cannot decide between them."
    assert by_id["q4"]["teacher_label"] == "b" and by_id["q5"]["teacher_label"] is None
    assert by_id["q6"]["error"].startswith("HTTP 400") and by_id["q6"]["raw_output"] is None
    p = rs.provenance
    assert p["teacher_accuracy"] == 2 / 6 and p["n_unparsed"] == 2 and p["n_errors"] == 1
    assert p["teacher"]["model"] == "fake-model" and p["teacher"]["api_key_env"] == "TEACHER_KEY"
    assert p["gold_conditioned"] is False and p["dataset"] == {"name": "toy"}
    assert p["decoding"]["max_new_tokens"] == 64 and "{question}" in p["prompt"]["template"]
    assert server.requests["question 6?"] == 1                  # a 400 is not retried
    assert all(s["auth"] == f"Bearer {SECRET}" for s in server.seen)
    assert server.seen[0]["body"]["stop"] == ["\nQ:"] and server.seen[0]["body"]["temperature"] == 0
    for folder in (out, home):                                  # the key is written nowhere
        for file in folder.rglob("*"):
            assert not file.is_file() or SECRET not in file.read_text(encoding="utf-8")
    assert not (tmp_path / "sets" / ".fake.partial").exists()


def test_retries_429_500_drops_and_garbled_bodies(server):
    ok = ("ok", "So the answer is (a).")
    server.script = {"question 1?": [("status", 429, "1"), ok],
                     "question 2?": [("status", 500, None), ("status", 503, None), ok],
                     "question 3?": [("drop",), ok],
                     "question 4?": [("garbage",), ok]}
    prompts = [PROMPT.render(ex) for ex in examples(4)]
    start = time.monotonic()
    completions = teacher(server).complete(prompts, GREEDY)
    assert time.monotonic() - start >= 1.0                      # Retry-After: 1 was honoured
    assert all(c.ok and c.text == "So the answer is (a)." for c in completions)
    assert [server.requests[f"question {i}?"] for i in range(1, 5)] == [2, 3, 2, 2]


def test_timeout_then_success_and_giving_up(server):
    server.script = {"question 1?": [("slow", 1.0, "late"), ("ok", "So the answer is (b).")],
                     "question 2?": [("slow", 1.0, "late")]}
    slow = teacher(server, timeout=0.3, max_retries=1)
    first, second = slow.complete([PROMPT.render(ex) for ex in examples(2)], GREEDY)
    assert first.ok and first.text == "So the answer is (b)."
    assert not second.ok and second.retryable and "gave up after 2 attempts" in second.error
    assert "timed out" in second.error
    assert server.requests["question 1?"] == 2 and server.requests["question 2?"] == 2


def test_transient_failures_leave_no_set_and_are_retried_on_the_next_run(server, tmp_path):
    ok = ("ok", "So the answer is (b).")
    server.script = {"question 2?": [("status", 500, None)] * 3 + [ok]}
    out = tmp_path / "set"
    exs = {"train": examples(3)}
    first = generate_rationales(exs, teacher(server, max_retries=2), PROMPT, GREEDY, out)
    assert first.set_path is None and list(first.failed) == ["train/q2"] and first.done == 2
    assert "HTTP 500" in first.failed["train/q2"] and not out.exists()
    second = generate_rationales(exs, teacher(server, max_retries=2), PROMPT, GREEDY, out)
    assert second.set_path == out and second.teacher_calls == 1
    assert dict(server.requests) == {"question 1?": 1, "question 2?": 4, "question 3?": 1}


def test_stop_midway_then_resume_asks_only_for_unfinished_examples(server, tmp_path):
    out, exs, events = tmp_path / "set", {"train": examples(8)}, []
    stop = lambda: len(events) >= 2  # noqa: E731  (after two batches)
    first = generate_rationales(exs, teacher(server), PROMPT, GREEDY, out, batch_size=2,
                                use_cache=False, progress=events.append, should_stop=stop)
    assert first.stopped and first.set_path is None and first.done == 4 and server.total() == 4
    second = generate_rationales(exs, teacher(server), PROMPT, GREEDY, out, batch_size=2,
                                 use_cache=False)
    assert second.set_path == out and second.done == 8 and second.teacher_calls == 4
    assert set(server.requests.values()) == {1} and len(server.requests) == 8
    assert [r["id"] for r in open_rationale_set(out).records] == [f"q{i}" for i in range(1, 9)]


def test_crash_midway_then_resume_drops_a_torn_line(server, tmp_path):
    out, exs = tmp_path / "set", {"train": examples(6)}

    def crash(event):
        if event["done"] >= 2:
            raise KeyboardInterrupt("worker killed")
    with pytest.raises(KeyboardInterrupt):
        generate_rationales(exs, teacher(server), PROMPT, GREEDY, out, batch_size=2,
                            use_cache=False, progress=crash)
    log = tmp_path / ".set.partial" / "records.jsonl"
    assert len(log.read_text().splitlines()) == 2
    with log.open("a") as f:
        f.write('{"id": "q3", "split": "tr')                   # a write cut short by the crash
    result = generate_rationales(exs, teacher(server), PROMPT, GREEDY, out, batch_size=2,
                                 use_cache=False)
    assert result.set_path == out and result.teacher_calls == 4
    assert set(server.requests.values()) == {1} and len(server.requests) == 6


def test_cache_reuse_across_sets_and_what_invalidates_it(server, tmp_path):
    exs = {"test": examples(4)}
    a = generate_rationales(exs, teacher(server), PROMPT, GREEDY, tmp_path / "a")
    assert a.teacher_calls == 4 and server.total() == 4
    b = generate_rationales(exs, teacher(server, concurrency=1), PROMPT, GREEDY, tmp_path / "b")
    assert b.teacher_calls == 0 and b.cache_hits == 4 and server.total() == 4
    assert open_rationale_set(a.set_path).content_hash == open_rationale_set(b.set_path).content_hash
    longer = Decoding(max_new_tokens=65)
    c = generate_rationales(exs, teacher(server), PROMPT, longer, tmp_path / "c")
    assert c.teacher_calls == 4 and server.total() == 8
    again = generate_rationales(exs, teacher(server), PROMPT, GREEDY, tmp_path / "a")
    assert again.set_path == tmp_path / "a" and server.total() == 8     # already written
    with pytest.raises(DataError, match="made otherwise"):
        generate_rationales(exs, teacher(server), PROMPT, longer, tmp_path / "a")


def test_chat_api_with_system_message(server):
    server.script = {"question 1?": [("ok", "Blue light scatters. So the answer is (b).")]}
    chat = load_teacher({"kind": "http", "base_url": server.url.removesuffix("/v1"),
                         "model": "fake-chat", "api": "chat", "system": "Be brief."})
    [completion] = chat.complete([PROMPT.render(examples(1)[0])], GREEDY)
    assert completion.text == "Blue light scatters. So the answer is (b)."
    seen = server.seen[0]
    assert seen["path"] == "/v1/chat/completions" and seen["auth"] is None
    assert seen["body"]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_api_key_is_read_from_the_named_variable_and_never_stored(server, monkeypatch):
    t = teacher(server)
    assert SECRET not in repr(vars(t)) and SECRET not in json.dumps(t.describe())
    monkeypatch.delenv("TEACHER_KEY")
    with pytest.raises(TeacherError, match="TEACHER_KEY .*is not set"):
        teacher(server)
    with pytest.raises(TeacherError, match="unknown key.*api_key"):
        load_teacher({"kind": "http", "base_url": server.url, "model": "m", "api_key": SECRET})


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_the_key_goes_nowhere_else(server, code):
    """urllib would follow a 301/302/303 to a POST with the Authorization header to any host."""
    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.send_response(code)
            self.send_header("Location", server.url + "/chat/completions")
            self.send_header("Content-Length", "0")
            self.end_headers()

    redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=redirector.serve_forever, args=(0.05,), daemon=True).start()
    try:
        t = HttpTeacher(f"http://127.0.0.1:{redirector.server_address[1]}/v1", "m", api="chat",
                        api_key_env="TEACHER_KEY", max_retries=0)
        [done] = t.complete(["Q: where?\nA:"], GREEDY)
    finally:
        redirector.shutdown()
        redirector.server_close()
    assert done.error and f"HTTP {code}" in done.error and "not followed" in done.error and not done.retryable
    assert server.seen == []                             # the target never heard from the teacher


def test_generation_on_a_local_release(server, tmp_path):
    cqa = load_examples("commonsenseqa-dsbs", "test")[:3]
    server.script = {ex.question: [("ok", f"Because. So the answer is ({ex.label}).")] for ex in cqa}
    result = generate_rationales({"test": cqa}, teacher(server), PROMPT, GREEDY, tmp_path / "s",
                                 dataset={"name": "commonsenseqa-dsbs", "split": "test"})
    assert result.teacher_accuracy == 1.0
    train = load_examples("rationale-set", "test", path=str(tmp_path / "s"))
    assert [ex.id for ex in train] == [ex.id for ex in cqa]
    assert all(ex.teacher_correct and ex.rationale == "Because." for ex in train)


def test_endpoint_urls_and_credentials_in_urls():
    from cotdistill.teachers.http import endpoint, retry_after_seconds
    assert endpoint("http://h:8000", "chat") == "http://h:8000/v1/chat/completions"
    assert endpoint("https://api.x.com/v1/", "completions") == "https://api.x.com/v1/completions"
    with pytest.raises(TeacherError, match="holds credentials"):
        endpoint("http://user:pw@h:8000/v1", "chat")
    with pytest.raises(TeacherError, match="not an http"):
        endpoint("h:8000", "chat")
    assert retry_after_seconds("3") == 3.0 and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0      # in the past


# --- bounded answers (issue 22) ----------------------------------------------------------------

def test_a_server_that_drips_is_cut_off_at_the_timeout_in_total(server):
    body = json.dumps({"choices": [{"text": "So the answer is (a)."}]}).encode()
    server.script = {"question 1?": [("drip", 0.25, body)]}          # 40 bytes: 10 s in all
    start = time.monotonic()
    [c] = teacher(server, timeout=1.0, max_retries=0).complete([PROMPT.render(examples(1)[0])], GREEDY)
    elapsed = time.monotonic() - start
    assert not c.ok and c.retryable and "within 1 s (the timeout counts the whole request" in c.error
    assert elapsed < 4.0            # each byte came well within a per-read timeout of 1 s


def test_an_answer_above_the_byte_cap_is_refused_not_stored(server, tmp_path):
    server.script = {"question 1?": [("huge", 50)], "question 2?": [("ok", "So the answer is (b).")]}
    [big] = teacher(server).complete([PROMPT.render(examples(1)[0])], GREEDY)
    assert not big.ok and big.retryable
    assert big.error.endswith("is larger than the 1,048,576-byte cap: refused, nothing stored")
    assert server.requests["question 1?"] == 1                   # not asked again within the run
    result = generate_rationales({"train": examples(2)}, teacher(server), PROMPT, GREEDY, tmp_path / "set")
    assert result.set_path is None and list(result.failed) == ["train/q1"]
    assert "refused, nothing stored" in result.failed["train/q1"] and not (tmp_path / "set").exists()
    partial = tmp_path / ".set.partial" / "records.jsonl"
    assert [json.loads(line)["id"] for line in partial.read_text().splitlines()] == ["q2"]


def test_a_declared_length_above_the_cap_is_refused_before_reading(server):
    server.script = {"question 1?": [("raw", b'{"choices": [{"text": "' + b"b" * 300 + b'"}]}')]}
    [c] = teacher(server, max_answer_bytes=100).complete([PROMPT.render(examples(1)[0])], GREEDY)
    assert not c.ok and c.error.endswith("is 327 bytes, more than the 100-byte cap: refused, nothing stored")


@pytest.mark.parametrize("api,body,message", [
    ("completions", {"choices": [{"text": 42}]}, "field choices[0].text is a number, not text"),
    ("completions", {"choices": [{"text": ["a"]}]}, "field choices[0].text is a list, not text"),
    ("completions", {"choices": [{"text": {"a": 1}}]}, "field choices[0].text is an object, not text"),
    ("completions", {"choices": [{"text": True}]}, "field choices[0].text is a boolean, not text"),
    ("completions", {"choices": {"0": {"text": "x"}}}, "field choices is an object, not a list"),
    ("completions", {"choices": ["x"]}, "field choices[0] is text, not an object"),
    ("completions", ["x"], "the answer is a list, not an object"),
    ("chat", {"choices": [{"message": "x"}]}, "field choices[0].message is text, not an object"),
    ("chat", {"choices": [{"message": {"content": [{"type": "text"}]}}]},
     "field choices[0].message.content is a list, not text"),
])
def test_a_field_of_the_wrong_type_is_one_sentence_naming_it_and_nothing_is_written(server, tmp_path, api,
                                                                                     body, message):
    server.script = {"question 1?": [("raw", json.dumps(body).encode())]}
    [c] = teacher(server, api=api).complete([PROMPT.render(examples(1)[0])], GREEDY)
    assert not c.ok and c.error.endswith(message) and "\n" not in c.error
    assert c.error.startswith(f"answer from {server.url}") and server.requests["question 1?"] == 1
    result = generate_rationales({"train": examples(1)}, teacher(server, api=api), PROMPT, GREEDY,
                                 tmp_path / "set")
    assert result.set_path is None and result.failed == {"train/q1": c.error}
    assert not (tmp_path / "set").exists()


@pytest.mark.parametrize("payload,message", [
    (b'{"choices": [{"text": "a", "text": "b"}]}', "the key 'text' is written twice in one object"),
    (b'{"choices": ' + b"[" * 100 + b"]" * 100 + b"}", "nested 101 levels deep, more than 64"),
])
def test_duplicate_keys_and_deep_answers_are_unreadable(server, payload, message):
    server.script = {"question 1?": [("raw", payload)]}
    [c] = teacher(server, max_retries=0).complete([PROMPT.render(examples(1)[0])], GREEDY)
    assert not c.ok and c.retryable and message in c.error


def test_nul_characters_and_lone_surrogates_never_reach_a_set(server, tmp_path):
    text = r"Blue\u0000 light\ud800. So the answer is (b)."   # JSON escapes
    server.script = {"question 1?": [("raw", ('{"choices": [{"text": "%s"}]}' % text).encode())]}
    result = generate_rationales({"train": examples(1)}, teacher(server), PROMPT, GREEDY, tmp_path / "set")
    [record] = open_rationale_set(result.set_path).records
    assert record["raw_output"] == "Blue light. So the answer is (b)." and record["rationale"] == "Blue light."
