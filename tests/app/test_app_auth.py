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
