"""A list query the page cannot use is refused (422), never shown unfiltered under the filters asked for.

The page used to drop a bad value with a message and list every deal: under a
form that still looked filtered, a manager could take that list for the one
asked for. Every value of the list's URL is held to the same rule, as the API
holds its own.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from dealscore_service.store import ScoreStore
from tests.ui.test_router import deal_ids
from tests.ui.ui_helpers import login


def _refused(client: TestClient, url: str) -> str:
    """The page for ``url``: a 422 that lists no deal and no total, says why, and keeps the page's headers."""
    resp = client.get(url)
    assert resp.status_code == 422, (url, resp.status_code)
    assert resp.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["cache-control"] == "no-store"
    html = resp.text
    assert deal_ids(html) == [], url
    assert 'data-testid="pipeline-value"' not in html and 'aria-label="Totals' not in html, url
    assert "<title>Filters not applied · Deals at risk · dealscore</title>" in html
    assert 'data-testid="filter-problems"' in html and "No deals are listed" in html
    assert 'role="search"' in html  # the form, to correct the value
    return html


@pytest.mark.parametrize(("query", "said"), [
    ("stage=closing", "Unknown stage &#39;closing&#39;"),
    ("min_amount=lots", "Minimum amount &#39;lots&#39; is not a number"),
    ("min_amount=-5", "Minimum amount &#39;-5&#39; is not a number ≥ 0"),
    ("min_amount=nan", "Minimum amount &#39;nan&#39;"),
    ("min_amount=1e999", "Minimum amount &#39;1e999&#39;"),
    ("show=some", "Show &#39;some&#39; is not known"),
    ("sort=evil", "Sort &#39;evil&#39; is not a column"),
    ("order=up", "Order &#39;up&#39; is not asc or desc."),
    ("page=abc", "Page &#39;abc&#39; is not a page number"),
    ("page=0", "Page &#39;0&#39; is not a page number"),
    ("per=7", "&#39;7&#39; deals a page is not offered"),
    ("min_p_win=0.3", "The list has no parameter &#39;min_p_win&#39;"),
    ("team=" + "x" * 250, "The team given is longer than 200 characters"),  # was cut to another team
    ("team=%FF", "The parameter &#39;team&#39; is not UTF-8 text"),  # was read as a replacement character
    ("team=NA&team=EMEA", "The parameter &#39;team&#39; is given 2 times (&#39;NA&#39;, &#39;EMEA&#39;)"),
])
def test_every_value_the_list_cannot_use_is_refused(client: TestClient, seeded: ScoreStore, query: str,
                                                    said: str) -> None:
    login(client, "manager")
    assert said in _refused(client, f"/ui?{query}")
    assert said in _refused(client, f"/ui?owner=ana&{query}")  # beside a good value too


def test_the_form_keeps_the_values_as_given(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    html = _refused(client, "/ui?team=EMEA&stage=closing&min_amount=lots&per=7&show=all&sort=amount&order=up")
    form = html.split('role="search"')[1].split("</form>")[0]
    # the good values as used, the refused ones as typed and marked, nothing replaced by a default
    assert '<option value="EMEA" selected>' in form and 'name="show" type="checkbox" value="all" checked' in form
    assert 'value="lots" aria-invalid="true" aria-describedby="filter-problems"' in form
    assert '<option value="closing" selected>closing (cannot be used)</option>' in form
    assert '<option value="7" selected>7 (cannot be used)</option>' in form
    assert re.search(r'name="stage" aria-invalid="true"', form) and re.search(r'name="per" aria-invalid="true"', form)
    assert '<input type="hidden" name="sort" value="amount">' in form
    assert 'name="order"' not in form  # refused: not carried on by the form (the next list's caption names it)


def test_the_list_without_the_refused_values_is_an_explicit_click(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    html = _refused(client, "/ui?team=EMEA&min_amount=lots")
    link = re.search(r'<a href="([^"]*)">list the deals without it</a>', html)
    assert link is not None and link.group(1) == "?team=EMEA"
    assert deal_ids(client.get("/ui" + link.group(1)).text) == ["E1"]


def test_refused_values_are_escaped(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    html = _refused(client, "/ui?min_amount=%3Cscript%3Ealert(1)%3C%2Fscript%3E&%3Cb%3Ex=%22%3E%3Cimg")
    assert "<script>alert" not in html and "<b>x" not in html and '"><img' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;x" in html


def test_a_refused_page_shows_a_limited_key_only_its_own_choices(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "emea")
    html = _refused(client, "/ui?sort=evil")
    assert '<option value="EMEA">' in html and '<option value="NA"' not in html
    assert 'name="csrf" value="' in html  # the sign-out form keeps its token
    # The token is random text that may hold any short name by chance, so it is blanked before the look.
    shown = re.sub(r'name="csrf" value="[^"]*"', 'name="csrf" value=""', html)
    assert "ben" not in shown and "D1" not in shown  # neither another team's owners nor its deals


def test_an_owner_matching_nothing_shows_in_the_form_as_asked(client: TestClient, seeded: ScoreStore) -> None:
    """Not refused (an owner may have no open deal yet), but the menu says what was asked, not "All owners"."""
    login(client, "manager")
    resp = client.get("/ui?owner=Bob")
    assert resp.status_code == 200 and deal_ids(resp.text) == []
    assert '<option value="Bob" selected>Bob (no open deal you can see)</option>' in resp.text


@pytest.mark.parametrize(("query", "said"), [
    ("perod=month", "The forecast has no parameter &#39;perod&#39;"),
    ("period=foo&period=month", "The parameter &#39;period&#39; is given 2 times"),
    ("period=month&by=owner&by=team", "The parameter &#39;by&#39; is given 2 times"),
    ("by=%FFteam", "The parameter &#39;by&#39; is not UTF-8 text"),
    ("currency=euros", "Currency &#39;euros&#39; is not an ISO 4217 currency code"),
    ("by=region", "by=&#39;region&#39; is not a grouping: the forecast groups by team or owner"),
])
def test_the_forecast_page_refuses_a_url_it_would_otherwise_read_past(client: TestClient, query: str,
                                                                      said: str) -> None:
    """A misspelt or repeated parameter gave 200 with another forecast (the quarter's, or the last value's)."""
    login(client, "manager")
    resp = client.get(f"/ui/forecast?{query}")
    assert resp.status_code == 422 and "Forecast not made" in resp.text, resp.text
    assert said in resp.text
