"""The password gate: bound to another address, nothing renders before the right password."""

import pytest
from streamlit import config

from app.auth import is_local, password_ok
from tests.app.apptest import open_page, texts, widget


@pytest.fixture
def exposed(tmp_path, monkeypatch):
    """The app bound to every interface, with a password, on an empty database."""
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.delenv("COTDISTILL_DATABASE_URL", raising=False)
    monkeypatch.setenv("COTDISTILL_PASSWORD", "s3cret-pass")
    config.set_option("server.address", "0.0.0.0")


def rendered_page(at) -> bool:
    return any(t.value == "Launch an experiment" for t in at.title)


def test_nothing_renders_before_the_password(exposed):
    at = open_page()
    assert not rendered_page(at)
    assert [t.value for t in at.title] == ["cotdistill"]
    assert "0.0.0.0" in texts(at)
    assert at.text_input[0].label == "Password" and at.text_input[0].proto.type == at.text_input[0].proto.PASSWORD
    assert not at.multiselect and not at.number_input            # no widget of any page


def test_a_wrong_password_is_refused(exposed):
    at = open_page()
    at.text_input[0].input("s3cret-pas")
    widget(at.button, "Sign in").click().run()
    assert "Wrong password." in [e.value for e in at.error]
    assert not rendered_page(at)


def test_the_right_password_opens_the_app_for_the_session(exposed):
    at = open_page()
    at.text_input[0].input("s3cret-pass")
    widget(at.button, "Sign in").click().run()
    assert not at.exception and rendered_page(at)
    at.switch_page("screens/runs.py").run()                       # still signed in on another page
    assert [t.value for t in at.title] == ["Runs"]


def test_without_a_password_the_exposed_app_says_what_to_do(exposed, monkeypatch):
    monkeypatch.delenv("COTDISTILL_PASSWORD")
    at = open_page()
    assert not rendered_page(at) and not at.text_input
    assert "COTDISTILL_PASSWORD is not set" in at.error[0].value


def test_local_addresses_need_no_password(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.delenv("COTDISTILL_DATABASE_URL", raising=False)
    monkeypatch.setenv("COTDISTILL_PASSWORD", "s3cret-pass")
    assert rendered_page(open_page())                             # the fixture binds 127.0.0.1


def test_addresses_and_comparison():
    assert is_local("127.0.0.1") and is_local("localhost") and is_local("::1")
    assert not is_local("0.0.0.0") and not is_local("") and not is_local(None) and not is_local("10.0.0.5")
    assert password_ok("abc", "abc") and not password_ok("abd", "abc") and not password_ok("", "abc")
    assert password_ok("pässword", "pässword")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_waits_1_2_4_seconds_after_five_failures_up_to_a_minute():
    from app.auth import Throttle
    clock = Clock()
    t = Throttle(clock)
    for _ in range(5):
        assert t.wait("a") == 0.0
        t.failed("a")
    assert t.wait("a") == 1.0 and t.wait("b") == 0.0           # per client
    clock.now += 0.25
    assert t.wait("a") == 0.75
    clock.now += 0.75
    assert t.wait("a") == 0.0
    waits = []
    for _ in range(8):                                          # failures 6 to 13
        t.failed("a")
        waits.append(t.wait("a"))
        clock.now += waits[-1]
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    t.succeeded("a")
    assert t.wait("a") == 0.0 and "a" not in t.failures


def test_short_passwords_are_refused():
    from app.auth import password_problem
    assert password_problem("1234567") == ("$COTDISTILL_PASSWORD has fewer than 8 non-space characters: set a "
                                          "longer password, or bind the app to 127.0.0.1")
    assert password_problem(" 1 2 3 4 5 6 7 ") is not None
    assert password_problem("12345678") is None and password_problem(" 1234 5678 ") is None


def sign_in(at, password: str):
    at.text_input[0].input(password)
    widget(at.button, "Sign in").click().run()
    return [e.value for e in at.error]


def test_the_sixth_attempt_waits_even_with_the_right_password(exposed, monkeypatch):
    from app import auth
    clock = Clock()
    monkeypatch.setattr(auth, "THROTTLE", auth.Throttle(clock))
    at = open_page()
    for _ in range(5):
        assert sign_in(at, "wrong-guess") == ["Wrong password."]
    assert sign_in(at, "s3cret-pass") == ["Too many wrong passwords: wait 1 s before trying again."]
    assert not rendered_page(at)
    assert list(auth.THROTTLE.failures.values()) == [(5, 1000.0)]   # refused unchecked: not a failure
    other = open_page()                  # the store is process-wide: the same client's new page waits too
    clock.now += 0.5
    assert sign_in(other, "s3cret-pass") == ["Too many wrong passwords: wait 1 s before trying again."]
    clock.now += 0.5
    assert sign_in(at, "s3cret-pass") == [] and rendered_page(at)
    assert auth.THROTTLE.failures == {}                             # signed in: the count starts afresh


def test_a_short_password_keeps_the_exposed_app_closed(exposed, monkeypatch):
    monkeypatch.setenv("COTDISTILL_PASSWORD", "abc 123")
    at = open_page()
    assert not rendered_page(at) and not at.text_input
    assert "fewer than 8 non-space characters" in at.error[0].value


def test_an_unreachable_database_is_one_line_on_the_screen(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", "postgresql://postgres:hunter2@127.0.0.1:1/test")
    from streamlit.testing.v1 import AppTest
    from tests.app.apptest import MAIN
    at = AppTest.from_file(str(MAIN), default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["cannot connect to postgresql://postgres:***@127.0.0.1:1/test: "
                                           "connection refused"]


def test_a_missing_sqlite_file_is_named_on_the_screen_and_not_created(tmp_path, monkeypatch):
    """Only `db upgrade` and `up` create the database: the app alone says where none was found."""
    missing = tmp_path / "typo" / "cotdistill.db"
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", f"sqlite:///{missing}")
    from streamlit.testing.v1 import AppTest
    from tests.app.apptest import MAIN
    at = AppTest.from_file(str(MAIN), default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"no database at {missing}; run `cotdistill db upgrade` or "
                                           f"`cotdistill up` first"]
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.parametrize("ip,key", [
    ("10.0.0.5", "ip:10.0.0.5"), ("2001:db8::1", "ip:2001:db8::1"), (None, "no-address"), ("", "no-address"),
    ("127.0.0.1", "no-address"), ("::1", "no-address"), (object(), "no-address"),
])
def test_throttle_keys(ip, key):
    from app.auth import throttle_key
    assert throttle_key(ip) == key


def test_hole4_reconnecting_without_an_address_does_not_reset_the_throttle(monkeypatch):
    """Streamlit reports no address on 127.0.0.1/::1 (everyone behind a local proxy or tunnel): each
    reconnect was a new session with a fresh budget. Now all such sessions share one backoff."""
    from types import SimpleNamespace

    import streamlit.runtime.scriptrunner as scriptrunner
    from app import auth
    clock = Clock()
    throttle = auth.Throttle(clock)
    monkeypatch.setattr(auth.st, "context", SimpleNamespace(ip_address=None))
    for attempt in range(6):                                   # a new session (reconnect) per guess
        monkeypatch.setattr(scriptrunner, "get_script_run_ctx", lambda i=attempt: SimpleNamespace(session_id=f"s{i}"))
        key = auth.client_key()
        if attempt < 5:
            assert throttle.wait(key) == 0.0
            throttle.failed(key)
    assert throttle.wait(key) == 1.0 and list(throttle.failures) == ["no-address"]
    monkeypatch.setattr(auth.st, "context", SimpleNamespace(ip_address="10.0.0.5"))
    assert throttle.wait(auth.client_key()) == 0.0            # a known address has its own budget
