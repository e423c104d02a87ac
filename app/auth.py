"""The password gate. The app binds to 127.0.0.1 by default; bound to any other address it asks for
$COTDISTILL_PASSWORD before anything renders.

    require_password()        # in app/main.py, before st.navigation: no page runs before it

"Another address" is read from Streamlit's `server.address` option. When it is unset Streamlit listens
on every interface, so an unset address needs the password too (`cotdistill up` always sets it).
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")
PASSWORD_ENV = "COTDISTILL_PASSWORD"
SIGNED_IN = "_cotdistill_signed_in"


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
        st.error(f"This app is reachable on {where}, and ${PASSWORD_ENV} is not set. Set it and restart, "
                 f"or bind the app to 127.0.0.1 (`cotdistill up` does by default).")
        st.stop()
    st.title("cotdistill")
    st.caption(f"This app is reachable on {where}: sign in with the password of ${PASSWORD_ENV}.")
    with st.form("sign_in"):
        given = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        if password_ok(given, expected):
            st.session_state[SIGNED_IN] = True
            st.rerun()
        st.error("Wrong password.")
    st.stop()
