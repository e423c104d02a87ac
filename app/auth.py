"""The password gate. The app binds to 127.0.0.1 by default; bound to any other address it asks for
$COTDISTILL_PASSWORD before anything renders.

    require_password()        # in app/main.py, before st.navigation: no page runs before it

"Another address" is read from Streamlit's `server.address` option. When it is unset Streamlit listens
on every interface, so an unset address needs the password too (`cotdistill up` always sets it).

Guessing is throttled: after FREE_ATTEMPTS (5) wrong passwords each further attempt waits 1 s, 2 s,
4 s, 8 s, 16 s, 32 s, then 60 s (MAX_WAIT_S) after the last failure, and an attempt within the wait
is refused without looking at the password: 10 guesses in the first minute, then one a minute,
until someone signs in. The failures live in one process-wide Throttle, keyed by
`throttle_key`: a failure budget per client address where Streamlit knows one, and ONE budget shared
by every connection without an address. Streamlit reports no address for 127.0.0.1 and ::1, which is
where a local reverse proxy or an SSH tunnel connects from, so everyone behind one shares the global
backoff (a guesser there slows the others down too: the price of not trusting forwarded headers,
which the client writes). Neither a reconnect nor a new browser session starts afresh. A password of
fewer than MIN_PASSWORD non-space characters is refused outright (here and by `cotdistill up`).
"""

from __future__ import annotations

import hmac
import math
import os
import threading
import time

import streamlit as st

LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")
PASSWORD_ENV = "COTDISTILL_PASSWORD"
SIGNED_IN = "_cotdistill_signed_in"
MIN_PASSWORD = 8
FREE_ATTEMPTS = 5
FIRST_WAIT_S = 1.0
MAX_WAIT_S = 60.0


def password_problem(password: str) -> str | None:
    """Why `password` is too weak to guard an exposed app, or None."""
    if len("".join(password.split())) < MIN_PASSWORD:
        return (f"${PASSWORD_ENV} has fewer than {MIN_PASSWORD} non-space characters: set a longer "
                f"password, or bind the app to 127.0.0.1")
    return None


class Throttle:
    """Failed sign-ins per client, shared by every session of the process (hence the lock)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.failures: dict[str, tuple[int, float]] = {}        # client -> (failures, time of the last)
        self.lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds before `client` may try again (0: now)."""
        with self.lock:
            n, last = self.failures.get(client, (0, 0.0))
        if n < FREE_ATTEMPTS:
            return 0.0
        delay = min(FIRST_WAIT_S * 2 ** (n - FREE_ATTEMPTS), MAX_WAIT_S)
        return max(0.0, last + delay - self.clock())

    def failed(self, client: str) -> None:
        with self.lock:
            n, _ = self.failures.get(client, (0, 0.0))
            self.failures[client] = (n + 1, self.clock())

    def succeeded(self, client: str) -> None:
        with self.lock:
            self.failures.pop(client, None)


THROTTLE = Throttle()


NO_ADDRESS = "no-address"
"""The one Throttle key of every connection whose address is unknown or the loopback's."""


def throttle_key(ip: object) -> str:
    """The Throttle key of a connection: `ip:<address>` for a known, non-loopback address (the socket's,
    never a header: those are the client's to choose), else NO_ADDRESS, shared by all such clients,
    so reconnecting (a new session) never resets the count."""
    if isinstance(ip, str) and ip.strip() and ip.strip() not in LOCAL_ADDRESSES:
        return f"ip:{ip.strip()}"
    return NO_ADDRESS


def client_key() -> str:
    """This connection's Throttle key (st.context.ip_address is None on 127.0.0.1 and ::1; a test
    harness may hand a stand-in object, which counts as no address)."""
    return throttle_key(st.context.ip_address)


def is_local(address: str | None) -> bool:
    """Whether the app is reachable from this machine only."""
    return (address or "").strip() in LOCAL_ADDRESSES


def password_ok(given: str, expected: str) -> bool:
    """Constant-time comparison, so the answer time does not leak how much of a guess was right."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def require_password() -> None:
    """Return when the app is local or this session signed in; otherwise show the sign-in form and
    stop the script, so nothing else renders."""
    address = st.get_option("server.address")
    if is_local(address) or st.session_state.get(SIGNED_IN):
        return
    expected = os.environ.get(PASSWORD_ENV)
    where = f"address {address}" if address else "every network interface"
    if not expected:
        st.error(f"This app is reachable on {where}, and ${PASSWORD_ENV} is not set. Set it and restart, "  # text: the operator's address
                 f"or bind the app to 127.0.0.1 (`cotdistill up` does by default).")
        st.stop()
    if problem := password_problem(expected):
        st.error(problem)                                   # text: password_problem's own sentence
        st.stop()
    st.title("cotdistill")
    st.caption(f"This app is reachable on {where}: sign in with the password of ${PASSWORD_ENV}.")  # text: operator's
    with st.form("sign_in"):
        given = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        client = client_key()
        if wait := THROTTLE.wait(client):
            st.error(f"Too many wrong passwords: wait {math.ceil(wait)} s before trying again.")
            st.stop()
        if password_ok(given, expected):
            THROTTLE.succeeded(client)
            st.session_state[SIGNED_IN] = True
            st.rerun()
        THROTTLE.failed(client)
        st.error("Wrong password.")
    st.stop()
