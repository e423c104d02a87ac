"""Which secrets a teacher may send, and where: the one policy for the worker, the app and the CLI.

    key_problem("OPENAI_API_KEY")                         # None, or why the variable may not be sent
    key_problem("OPENAI_API_KEY", named_by_user=True)     # the CLI: the user typed the name
    normalise_url("HTTP://Vllm.Lab:80/v1/")               # 'http://vllm.lab/v1', or TeacherError
    url_problem("http://vllm.lab:8000/v1")                # None, or why the URL is not allowed

Keys: nothing from the environment is sent anywhere unless the operator named that variable in
`COTDISTILL_TEACHER_KEYS` (comma-separated exact names, no patterns, no default). On the command line
(`cotdistill teacher generate --api-key-env NAME`) the user's own `--api-key-env` counts as naming it;
a variable the CLI did not get on its command line follows the list. Whatever either says, the app's
password, every other `COTDISTILL_*` variable and the database and broker secrets (NEVER) are never
sent.

URLs: a base URL is normalised before anything compares it (scheme and host lower-cased, the default
port dropped, repeated slashes merged) and refused when it holds userinfo (`user:pass@`), a
backslash, a `.` or `..` segment (also percent-encoded), a query, a fragment or a control character.
`COTDISTILL_TEACHER_URLS` (comma-separated prefixes, normalised the same way) then restricts where
teachers may be called, at a path boundary; unset, any http(s) URL is allowed (no key goes with it
unless the key list names one).
"""

from __future__ import annotations

import fnmatch
import os
import re
import urllib.parse
from typing import Mapping

from cotdistill.errors import TeacherError

__all__ = ["KEYS_ENV", "NEVER", "URLS_ENV", "allowed_keys", "key_problem", "normalise_url",
           "url_problem"]

KEYS_ENV = "COTDISTILL_TEACHER_KEYS"
URLS_ENV = "COTDISTILL_TEACHER_URLS"
# Never sent, whatever a list or a command line says: the app's and the services' own secrets.
NEVER = ("COTDISTILL_*", "DATABASE_URL", "*_DATABASE_URL", "*_BROKER_URL", "REDIS_URL", "PGPASSWORD",
         "PGPASS*", "POSTGRES_PASSWORD")
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_HOST = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*|\[[0-9a-f:.]+\]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def allowed_keys(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The variable names the operator listed in COTDISTILL_TEACHER_KEYS (exact names)."""
    env = os.environ if environ is None else environ
    return tuple(n.strip() for n in env.get(KEYS_ENV, "").split(",") if n.strip())


def key_problem(name: str, environ: Mapping[str, str] | None = None, *,
                named_by_user: bool = False) -> str | None:
    """Why the variable `name` may not be sent to a teacher, or None. `named_by_user`: the user typed
    the name on the command line (the CLI), which allow-lists it except for NEVER."""
    if not isinstance(name, str) or not _VAR.fullmatch(name):
        return f"{name!r} is not an environment variable name (letters, digits and '_')"
    if any(fnmatch.fnmatchcase(name, p) for p in NEVER):
        return (f"the variable {name} may not be sent to a teacher: the app's password, every "
                f"COTDISTILL_* variable and the database and broker secrets never are")
    if named_by_user:
        return None
    listed = allowed_keys(environ)
    if name not in listed:
        return (f"the variable {name} may not be sent to a teacher: the operator lists the variables "
                f"teachers may use, by exact name, in {KEYS_ENV} (now: {', '.join(listed) or 'none'})")
    return None


def normalise_url(url: str) -> str:
    """`url` in one canonical form, or TeacherError saying what is wrong with it."""
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise TeacherError("base_url is empty; give an http(s) URL like http://localhost:8000/v1")
    if "\\" in text or any(ord(c) < 33 or ord(c) == 127 for c in text):
        raise TeacherError(f"base_url {text!r} holds a backslash, a space or a control character")
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise TeacherError(f"base_url {text!r} is not an http(s) URL like http://localhost:8000/v1")
    if "@" in parts.netloc:
        raise TeacherError("base_url holds credentials (user:password@); put the key in an environment "
                           "variable and name it with api_key_env, so that it is never written anywhere")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise TeacherError(f"base_url {text!r} has a query or a fragment; give the server's base URL only")
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError:
        raise TeacherError(f"base_url {text!r} has a port that is not a number from 0 to 65535") from None
    if not _HOST.fullmatch(host if ":" not in host else f"[{host}]"):
        raise TeacherError(f"base_url {text!r} has an unusable host name {parts.hostname!r}")
    segments = [s for s in parts.path.split("/") if s]
    if any(urllib.parse.unquote(s) in (".", "..") or re.search(r"%(2f|5c)", s, re.I) for s in segments):
        raise TeacherError(f"base_url {text!r} has a '.' or '..' segment or an encoded separator in its "
                           f"path; write the path out in full")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return urllib.parse.urlunsplit((scheme, netloc, "/" + "/".join(segments), "", ""))


def url_problem(url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why a teacher may not be called at `url`, or None: it does not normalise, or it lies under
    none of COTDISTILL_TEACHER_URLS' prefixes (at a path boundary; unset: any http(s) URL)."""
    env = os.environ if environ is None else environ
    try:
        found = normalise_url(url)
    except TeacherError as e:
        return str(e)
    raw = [p.strip() for p in env.get(URLS_ENV, "").split(",") if p.strip()]
    if not raw:
        return None
    for prefix in raw:
        try:
            base = normalise_url(prefix).rstrip("/")
        except TeacherError:
            continue                                 # an unusable prefix admits nothing
        if found == base or found.startswith(base + "/"):
            return None
    return (f"{url!r} is not an allowed teacher URL (allowed: {', '.join(raw)}; the operator sets "
            f"{URLS_ENV})")
