"""Fixtures of the app tests: the app bound to 127.0.0.1 unless a test says otherwise, and no cached
query result carried from one test (and its database) to the next."""

import pytest


@pytest.fixture(autouse=True)
def app_state():
    """Streamlit's config and caches live in this process: reset them around every test."""
    import streamlit as st
    from streamlit import config
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    st.cache_data.clear()
    yield
    config.set_option("server.address", before)
    st.cache_data.clear()
