"""Any OpenAI-compatible endpoint as the teacher: vLLM, TGI, llama.cpp server, OpenAI itself.

    teacher = HttpTeacher("http://localhost:8000/v1", "Qwen/Qwen2.5-7B-Instruct")
    teacher = HttpTeacher("https://api.openai.com/v1", "gpt-4o-mini", api="chat",
                          api_key_env="OPENAI_API_KEY", concurrency=8)
    completions = teacher.complete(prompts, Decoding(max_new_tokens=256))

`api="completions"` posts the prompt to /v1/completions; `api="chat"` sends it as one user
message to /v1/chat/completions. The API key is read from the environment variable NAMED by
`api_key_env` at each request; the key itself is never stored in the object, the cache, or any
provenance. The app's password and every COTDISTILL_* variable are never sent, and the base URL is
normalised first (cotdistill.teachers.access; jobs also need the operator's allow-list). Up to `concurrency` requests are in flight at once (a thread pool). HTTP 429, 5xx,
connection errors, timeouts and unreadable bodies are retried with exponential backoff
(`backoff` x 2^attempt seconds, or the server's Retry-After, at most `max_backoff`); other 4xx
answers are final. `timeout` bounds each attempt as a whole, in seconds: connecting, sending,
waiting and reading the answer together (a server that drips one byte a second is cut off at
`timeout`, not kept alive by each byte; the attempt counts as a timeout and is retried).

Answers are bounded and typed: a body larger than `max_answer_bytes` (default 1 MiB, far above any
completion) is refused, and `choices[0].text` (or `.message.content`) that is not text is an error
naming the field; either fails the example for this run without retrying it (nothing recorded,
cached or written; the next run asks again). A body whose JSON nests deeper than 64 levels or
repeats a key is unreadable (retried, like a proxy's error page). Only the standard library is
used.
"""

from __future__ import annotations

import email.utils
import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import json

from cotdistill.safe_load import ParseError, load_json
from cotdistill.teachers.access import key_problem, normalise_url
from cotdistill.teachers.base import Completion, Decoding
from cotdistill.errors import TeacherError
from cotdistill.teachers.local import cut_at_stop

APIS = {"completions": "/completions", "chat": "/chat/completions"}
MAX_STOP = 4  # the OpenAI API accepts at most four stop strings
MAX_ANSWER_BYTES = 1 << 20
"""An answer body larger than this is refused: 256 new tokens are about 1 KB of text."""
CHUNK = 64 << 10


class _Retry(Exception):
    """A failure that may pass: 429, 5xx, connection trouble, a timeout, a garbled body."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Final(Exception):
    """A failure that asking again will not fix (400, 401, 404, …)."""


class _Unusable(Exception):
    """An answer that arrived but cannot be used: larger than the cap, or a field of the wrong type.
    A server that answers so is broken or hostile, not this prompt: the example fails this run
    (nothing is recorded or cached, no set is written) without retrying, and is asked for again on
    the next run."""


class HttpTeacher:
    """Completions from an OpenAI-compatible server over HTTP."""

    def __init__(self, base_url: str, model: str, *, api: str = "completions",
                 api_key_env: str | None = None, timeout: float = 60.0, max_retries: int = 5,
                 backoff: float = 1.0, max_backoff: float = 60.0, concurrency: int = 4,
                 system: str | None = None, extra_body: Mapping[str, Any] | None = None,
                 max_answer_bytes: int = MAX_ANSWER_BYTES):
        if api not in APIS:
            raise TeacherError(f"unknown api {api!r}; expected one of {', '.join(APIS)}")
        if not (concurrency >= 1 and max_retries >= 0 and 0 < timeout < float("inf")
                and max_answer_bytes >= 1):
            raise TeacherError(f"concurrency must be >= 1, max_retries >= 0, timeout a number of "
                               f"seconds > 0 and max_answer_bytes >= 1; got concurrency "
                               f"{concurrency!r}, max_retries {max_retries!r}, timeout {timeout!r}, "
                               f"max_answer_bytes {max_answer_bytes!r}")
        if api_key_env is not None and (problem := key_problem(api_key_env, named_by_user=True)):
            raise TeacherError(f"api_key_env: {problem}")
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise TeacherError(f"the environment variable {api_key_env} (named by api_key_env) "
                               f"is not set: export the API key there")
        self.url, self.model, self.api = endpoint(base_url, api), model, api
        self.api_key_env, self.timeout, self.max_retries = api_key_env, timeout, max_retries
        self.backoff, self.max_backoff, self.concurrency = backoff, max_backoff, concurrency
        self.system, self.extra_body = system, dict(extra_body or {})
        self.max_answer_bytes = max_answer_bytes

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {"kind": "http", "url": self.url, "model": self.model,
                                 "api": self.api}
        if self.system:
            ident["system"] = self.system
        return {**ident, "extra_body": self.extra_body} if self.extra_body else ident

    def describe(self) -> dict[str, Any]:
        return {**self.identity(), "api_key_env": self.api_key_env, "timeout": self.timeout,
                "max_retries": self.max_retries, "concurrency": self.concurrency}

    def complete(self, prompts: Sequence[str], decoding: Decoding) -> list[Completion]:
        """One request per prompt, `concurrency` at a time; results in prompt order."""
        if not prompts:
            return []
        with ThreadPoolExecutor(min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda p: self._one(p, decoding), prompts))

    def _one(self, prompt: str, decoding: Decoding) -> Completion:
        body = json.dumps(self._body(prompt, decoding)).encode()
        for attempt in range(self.max_retries + 1):
            try:
                return Completion(text=cut_at_stop(self._post(body), decoding.stop))
            except _Final as e:
                return Completion(error=str(e), retryable=False)
            except _Unusable as e:
                return Completion(error=str(e), retryable=True)
            except _Retry as e:
                last = e
                if attempt < self.max_retries:
                    time.sleep(self._delay(attempt, e.retry_after))
        return Completion(error=f"gave up after {self.max_retries + 1} attempts: {last}",
                          retryable=True)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        wanted = retry_after if retry_after is not None else self.backoff * 2 ** attempt
        return max(0.0, min(wanted, self.max_backoff))

    def _body(self, prompt: str, decoding: Decoding) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "max_tokens": decoding.max_new_tokens,
                                "temperature": decoding.temperature, "top_p": decoding.top_p,
                                "seed": decoding.seed}
        if decoding.stop:
            body["stop"] = list(decoding.stop[:MAX_STOP])
        if self.api == "completions":
            body["prompt"] = prompt
        else:
            system = [{"role": "system", "content": self.system}] if self.system else []
            body["messages"] = system + [{"role": "user", "content": prompt}]
        return {**body, **self.extra_body}

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise _Final(f"the environment variable {self.api_key_env} is no longer set")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post(self, body: bytes) -> str:
        request = urllib.request.Request(self.url, data=body, headers=self._headers(),
                                         method="POST")
        deadline = _Deadline(self.timeout)
        try:
            with _opener(deadline).open(request, timeout=self.timeout) as response:
                payload = self._read(response, deadline)
        except urllib.error.HTTPError as e:
            if 300 <= e.code < 400:
                raise _Final(f"HTTP {e.code} from {self.url}: a redirect (to {e.headers.get('Location')!r}) "
                             f"is not followed, the API key would go with it; set base_url to the "
                             f"final address") from None
            detail = f"HTTP {e.code} from {self.url}: {_excerpt(_read_some(e))}"
            if e.code == 429 or e.code >= 500:
                raise _Retry(detail, retry_after_seconds(e.headers.get("Retry-After"))) from None
            raise _Final(detail) from None
        except (OSError, http.client.HTTPException) as e:   # URLError, timeouts, resets
            if deadline.expired:
                raise _Retry(deadline.message(self.url)) from None
            reason = getattr(e, "reason", None) or e
            raise _Retry(f"{type(e).__name__} from {self.url}: {reason}") from None
        finally:
            deadline.cancel()
        if deadline.expired:
            raise _Retry(deadline.message(self.url))
        return self._text(payload)

    def _read(self, response, deadline: "_Deadline") -> bytes:
        """The body, at most max_answer_bytes (a larger one is unusable, never kept)."""
        cap = self.max_answer_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.strip().isdigit() and int(declared) > cap:
            raise _Unusable(f"the answer from {self.url} is {int(declared):,} bytes, more than the "
                         f"{cap:,}-byte cap: refused, nothing stored")
        parts, size = [], 0
        while chunk := response.read(CHUNK):
            size += len(chunk)
            if size > cap:
                raise _Unusable(f"the answer from {self.url} is larger than the {cap:,}-byte cap: "
                             f"refused, nothing stored")
            parts.append(chunk)
            if deadline.expired:
                break
        return b"".join(parts)

    def _text(self, payload: bytes) -> str:
        """The completion's text. A body that is not JSON, or lacks the field, is unreadable (retried:
        a proxy's error page passes); a field of the wrong type is unusable, named."""
        try:
            value = load_json(payload)
        except ParseError as e:
            raise _Retry(f"unreadable answer from {self.url} ({e}): {_excerpt(payload)}") from None
        path = ["choices", 0, "text"] if self.api == "completions" else ["choices", 0, "message", "content"]
        where = "the answer"
        for i, step in enumerate(path):
            container = list if isinstance(step, int) else dict
            if not isinstance(value, container):
                raise _Unusable(f"answer from {self.url}: {where} is {_kind(value)}, not "
                             f"{_kind(container())}")
            where = "field " + "".join(f"[{p}]" if isinstance(p, int) else ("." if j else "") + p
                                       for j, p in enumerate(path[:i + 1]))
            if (step >= len(value)) if isinstance(step, int) else (step not in value):
                raise _Retry(f"unreadable answer from {self.url}: no {where}: {_excerpt(payload)}")
            value = value[step]
        if value is None:
            return ""
        if not isinstance(value, str):
            raise _Unusable(f"answer from {self.url}: {where} is {_kind(value)}, not text")
        return value


def _kind(value) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}  # the JSON names of what json.loads returns
    return names.get(type(value), type(value).__name__)


def _read_some(error: urllib.error.HTTPError, limit: int = 4096) -> bytes:
    """The start of an error answer's body (never the whole of a large one)."""
    try:
        return error.read(limit)
    except (OSError, http.client.HTTPException):
        return b""


class _Deadline:
    """The end of one attempt: when it passes, the attempt's socket is shut down, which ends any
    read that is blocked on it (a server that drips bytes never reaches a per-read timeout)."""

    def __init__(self, seconds: float):
        self.seconds, self.expired = seconds, False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def message(self, url: str) -> str:
        return (f"timed out: no complete answer from {url} within {self.seconds:g} s (the timeout "
                f"counts the whole request, not each read)")


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _watched(base: type, deadline: _Deadline) -> type:
    """`base` (an http.client connection class) whose socket the deadline watches once connected."""

    class Watched(base):
        def connect(self):
            super().connect()
            deadline.watch(self.sock)

    return Watched


class _HTTP(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline

    def http_open(self, req):
        return self.do_open(_watched(http.client.HTTPConnection, self.deadline), req)


class _HTTPS(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline

    def https_open(self, req):
        return self.do_open(_watched(http.client.HTTPSConnection, self.deadline), req,
                            context=self._context, check_hostname=self._check_hostname)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib follows a 301/302/303 answer to a POST with every header, Authorization included, to
    wherever it points; here a redirect is an error instead (HTTPError with the 3xx code)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    """urllib's opener (proxies from the environment included) with redirects refused and the
    connections watched by `deadline`."""
    return urllib.request.build_opener(_NoRedirect, _HTTP(deadline), _HTTPS(deadline))


def endpoint(base_url: str, api: str) -> str:
    """The full URL of the API: 'http://h:8000' and 'http://h:8000/v1' both work."""
    parsed = urllib.parse.urlsplit(normalise_url(base_url))   # no '..', userinfo, odd case, '\\'
    path = parsed.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path + APIS[api], "", ""))


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _excerpt(payload: bytes, limit: int = 300) -> str:
    text = payload.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[:limit] + " …"
