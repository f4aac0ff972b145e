"""The page kit without a browser: languages, messages, CSRF tokens, charts, headers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from kouza.kit.pages import csrf_token, csrf_valid, mount_static, page_headers
from kouza.kit.pages.charts import bars, stacked_columns
from kouza.kit.pages.i18n import Catalog, choose_language

SECRET = b"k" * 32


def request(query: str = "", headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "query_string": query.encode(), "headers": raw})


def test_language_from_query_then_cookie_then_accept_language() -> None:
    assert choose_language(request("lang=en"), ("ja", "en")) == "en"
    assert choose_language(request(headers={"Cookie": "kouza_lang=en"}), ("ja", "en")) == "en"
    assert (
        choose_language(
            request(headers={"Accept-Language": "fr, en;q=0.8, ja;q=0.9"}), ("ja", "en")
        )
        == "ja"
    )
    assert (
        choose_language(request(headers={"Accept-Language": "en-US,en;q=0.9"}), ("ja", "en"))
        == "en"
    )
    assert choose_language(request("lang=de", {"Accept-Language": "de"}), ("ja", "en")) == "ja"


def test_catalog_falls_back_and_lists_what_is_missing() -> None:
    catalog = Catalog({"a": {"ja": "あ{n}", "en": "A{n}"}, "b": {"ja": "び"}})
    assert catalog.text("a", "en", n=1) == "A1"
    assert catalog.text("b", "en") == "び"
    assert catalog.text("missing", "en") == "missing"
    assert catalog.incomplete() == ["b"]


def test_csrf_token_is_bound_to_its_session() -> None:
    token = csrf_token(SECRET, "session-1")
    assert csrf_valid(SECRET, "session-1", token)
    assert not csrf_valid(SECRET, "session-2", token)
    assert not csrf_valid(SECRET, "session-1", None)
    assert not csrf_valid(SECRET, "", csrf_token(SECRET, ""))


def test_charts_state_their_figures_for_screen_readers() -> None:
    svg = str(bars("Refusals by bank", {"0125 <b>": 12, "0010": 3}))
    assert 'role="img"' in svg and "<desc" in svg and "0125 &lt;b&gt;: 12" in svg
    columns = str(
        stacked_columns("Top-ups", ["10:00", "11:00"], {"posted": [2, 0], "held": [1, 4]})
    )
    assert "posted: 2" in columns and "held: 5" in columns and columns.count("<rect") >= 3 + 2


def test_form_targets_widen_only_form_action() -> None:
    policy = page_headers(form_targets=["https://bank.example"])["Content-Security-Policy"]
    assert "form-action 'self' https://bank.example" in policy
    assert "script-src 'self';" in policy


def test_assets_are_served_from_the_package() -> None:
    app = FastAPI()
    mount_static(app)
    mount_static(app)
    client = TestClient(app)
    answer = client.get("/static/kit/htmx-2.0.11.min.js")
    assert answer.status_code == 200 and "htmx" in answer.text[:2000]
    assert client.get("/static/kit/kit.css").status_code == 200
    assert client.get("/static/kit/../__init__.py").status_code == 404


def test_times_are_shown_in_japan_time() -> None:
    from datetime import UTC, datetime

    from kouza.kit.pages import japan_time

    assert japan_time(datetime(2026, 12, 4, 16, 55, tzinfo=UTC)) == "2026-12-05 01:55 JST"
    assert japan_time(datetime(2026, 12, 4, 16, 55)) == "2026-12-05 01:55 JST"
    assert japan_time(None) == "—"
