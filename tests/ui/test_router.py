"""The pages over a hand-seeded store: ranking, totals, filters, sorting, paging, limits, empty and error states."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient

from dealscore_service.auth import Principal, Scope
from dealscore_service.forecasting import forecast_currencies
from dealscore_service.store import ScoreStore
from dealscore_service.ui.router import group_label, mixed_currencies
from tests.ui.ui_helpers import T0, build_app, key, login, make_settings, result, save


def deal_ids(html: str) -> list[str]:
    """Deal ids of the list's rows, in order."""
    return re.findall(r'<tr data-deal="([^"]+)"', html)


def test_list_ranks_by_value_at_risk_with_totals(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    page = client.get("/ui")
    assert page.status_code == 200
    # D3 scores above its stage (not at risk), C1 is closed: neither is listed
    assert deal_ids(page.text) == ["D1", "D2", "E1"]
    assert '<span class="stat-value" data-testid="pipeline-value">250k</span>' in page.text  # 100k+80k+50k+20k
    assert '<span class="stat-value" data-testid="value-at-risk">47k</span>' in page.text  # 25,000+12,000+10,000
    assert "4 open deals" in page.text and "3 deals below their stage" in page.text
    d1 = page.text.split('data-deal="D1"')[1].split("</tr>")[0]
    assert "25,000" in d1 and "high</span> priority" in d1  # 100k × gap 0.25: money; top of the list
    assert '<tr data-deal="D1" class="has-mismatch">' in page.text
    assert "CRM ahead of evidence" in d1 and 'class="stage inferred mismatch ahead_of_evidence">discovery' in d1
    assert 'class="spark"' in d1 and "last 3 scores: 40% to 20%" in d1
    assert "Gone quiet" in d1 and "Call the champion to restart the conversation" in d1 and "+8 pts" in d1
    d2 = page.text.split('data-deal="D2"')[1].split("</tr>")[0]
    assert '<tr data-deal="D2">' in page.text and "evidence agrees" in d2


def test_show_all_includes_deals_not_at_risk(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    page = client.get("/ui?show=all").text
    assert deal_ids(page) == ["D1", "D2", "E1", "D3"]
    d3 = page.split('data-deal="D3"')[1].split("</tr>")[0]
    assert 'data-label="Value at risk" class="num var">—' in d3


def test_filters(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    assert deal_ids(client.get("/ui?owner=ben").text) == ["D2"]
    assert deal_ids(client.get("/ui?owner=ben&show=all").text) == ["D2", "D3"]
    assert deal_ids(client.get("/ui?team=EMEA").text) == ["E1"]
    assert deal_ids(client.get("/ui?min_amount=70000").text) == ["D1", "D2"]
    assert deal_ids(client.get("/ui?min_amount=70,000").text) == ["D1", "D2"]
    assert deal_ids(client.get("/ui?stage=Proposal").text) == ["D1", "D2", "E1"]  # labels and aliases work
    page = client.get("/ui?team=EMEA").text
    assert '<span class="stat-value" data-testid="pipeline-value">50k</span>' in page
    assert '<option value="EMEA" selected>' in page
    nothing = client.get("/ui?stage=negotiation").text
    assert "No deal is at risk" in nothing and "Show all open deals" in nothing
    none = client.get("/ui?owner=nobody").text
    assert "No deals match these filters" in none
    bad = client.get("/ui?min_amount=lots&stage=closing")
    assert bad.status_code == 422  # refused, not dropped (tests/ui/test_refused_filters.py)
    assert "Minimum amount &#39;lots&#39; is not a number" in bad.text
    assert "Unknown stage &#39;closing&#39;" in bad.text
    assert deal_ids(bad.text) == []  # no list that would pass for the filtered one


def test_totals_explain_the_share_at_risk_and_notices_agree_in_number(client: TestClient, store: ScoreStore) -> None:
    notice = "this model was trained on a different history (another CRM)"
    save(store, result("N1").model_copy(update={"notices": [notice]}), result("N2"))
    login(client, "manager")
    page = client.get("/ui").text
    # the share is value at risk over pipeline; warnings and drops weigh the priority, not this share
    assert "weighted by warnings" not in page and "over the pipeline value" in page
    assert "1 of these deals was scored by a model trained on other data" in page


def test_sorting_and_sort_links(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    assert deal_ids(client.get("/ui?show=all&sort=amount").text) == ["D1", "D2", "E1", "D3"]
    assert deal_ids(client.get("/ui?show=all&sort=amount&order=asc").text) == ["D3", "E1", "D2", "D1"]
    assert deal_ids(client.get("/ui?show=all&sort=p_win&order=asc").text) == ["D1", "E1", "D2", "D3"]
    assert deal_ids(client.get("/ui?show=all&sort=deal&order=asc").text) == ["D1", "D2", "D3", "E1"]
    assert deal_ids(client.get("/ui?sort=risk&order=asc").text) == ["E1", "D2", "D1"]
    assert deal_ids(client.get("/ui?show=all&sort=stage").text)[0] == "D3"  # negotiation is the latest stage
    page = client.get("/ui?sort=amount").text
    header = page.split('aria-sort="descending"')[1][:200]
    assert "sort=amount&amp;order=asc" in header  # a second click reverses
    bogus = client.get("/ui?sort=bogus")
    assert bogus.status_code == 422 and deal_ids(bogus.text) == []


def test_pagination(client: TestClient, store: ScoreStore) -> None:
    save(store, *[result(f"P{i:02d}", amount=1000.0 * (i + 1), p_win=0.2) for i in range(30)])
    login(client, "manager")
    first = client.get("/ui").text
    assert len(deal_ids(first)) == 25 and deal_ids(first)[0] == "P29"
    assert "Page 1 of 2" in first and 'rel="next"' in first and "page=2" in first
    second = client.get("/ui?page=2").text
    assert deal_ids(second) == ["P04", "P03", "P02", "P01", "P00"]
    assert "Deals at risk 26–30 of 30" in second
    assert deal_ids(client.get("/ui?page=99").text) == deal_ids(second)  # past the end: the last page
    huge = client.get("/ui?page=9223372036854775807")  # an offset SQLite's integers cannot hold
    assert huge.status_code == 200 and deal_ids(huge.text) == deal_ids(second)
    assert len(deal_ids(client.get("/ui?per=50").text)) == 30


def test_team_limited_key_sees_only_its_team(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "emea")
    page = client.get("/ui?show=all")
    assert deal_ids(page.text) == ["E1"]
    assert "team EMEA" in page.text
    assert '<option value="NA"' not in page.text
    assert deal_ids(client.get("/ui?team=NA&show=all").text) == []  # asking for another team shows nothing
    other = client.get("/ui/deals/D1")
    assert other.status_code == 404
    assert "Deal not found" in other.text and "visible to your key" in other.text
    assert "Gone quiet" not in other.text
    assert client.get("/ui/deals/E1").status_code == 200


def test_deal_page(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    page = client.get("/ui/deals/D1?back=/ui?team=NA")
    assert page.status_code == 200
    html = page.text
    assert "Deal D1" in html and "acct-D1" in html
    assert '<span data-testid="p-win">20%</span>' in html
    assert "Deals in proposal usually win" in html and "45%" in html
    assert "declining" in html and "−20 pts" in html  # 40% → 20% over its three scores
    assert "25,000" in html  # the same value at risk as in the list
    assert "CRM ahead of evidence" in html and "no proposal was sent" in html
    assert html.count('class="bar"') == 3
    assert "No reply from the customer in 21 days" in html and "−9 pts" in html and "+6 pts" in html
    assert html.index("No reply from the customer") < html.index("Only one contact") < html.index("Decision maker met")
    assert "No inbound touch for 21 days (usual gap 9)" in html and "p90 gap of won deals" in html
    assert html.count("<li><strong>") >= 3 and "Send a mutual close plan" in html
    chart = html.split('data-testid="history-chart"')[1].split("</figure>")[0]
    assert chart.count("<circle") == 3 and "stage usually wins 45%" in chart
    assert "Win probability over 3 scores" in chart
    assert "Win probability fell from 30% to 20%" in html and "Evidence now points to discovery" in html
    assert "Warning: Gone quiet" in html and "First scored: 40%" in html
    assert "stored without its touchpoints" in html  # said, not silently missing
    assert 'href="/ui?team=NA"' in html  # back to the filtered list


def test_the_value_at_risk_of_a_deal_without_an_amount_is_unknown_not_none(
    client: TestClient, store: ScoreStore,
) -> None:
    """A deal scored 10% in a stage that usually wins 45%, with no amount, read "none: at or above its stage's
    usual win rate", the opposite of the truth; one with an amount of 0 read the same."""
    save(store, result("NA-1", p_win=0.10, amount=None, typical=0.45),
         result("Z-1", p_win=0.10, amount=0.0, typical=0.45), result("UP-1", p_win=0.60, amount=10.0, typical=0.45),
         result("UP-2", p_win=0.60, amount=None, typical=0.45), result("NT-1", p_win=0.10, amount=5_000, typical=None))
    login(client, "manager")

    def shown(deal_id: str) -> str:
        html = client.get(f"/ui/deals/{deal_id}").text
        return html.split('data-testid="value-at-risk">')[1].split("</dd>")[0]

    assert shown("NA-1") == "unknown: the deal has no amount"
    assert shown("Z-1") == "none: the deal’s amount is 0"
    assert shown("UP-1") == shown("UP-2") == "none: at or above its stage’s usual win rate"  # amount or not
    assert shown("NT-1") == "none known: its stage’s usual win rate is unknown"


def timeline_items(html: str) -> list[str]:
    """The timeline's entries (their HTML), in page order."""
    section = html.split('data-testid="timeline"')[1].split("</ol>")[0]
    return re.findall(r"<li class=\"[^\"]*\">.*?</li>", section, flags=re.S)


def test_deal_page_timeline_shows_touchpoints_and_stage_changes(client: TestClient, store: ScoreStore) -> None:
    touches = [
        {"occurred_at": "2025-04-02T09:00:00", "type": "email", "direction": "outbound", "contact_role": "champion",
         "contact_id": "c1"},
        {"occurred_at": "2025-04-09T16:00:00", "type": "meeting", "direction": "inbound",
         "contact_role": "decision_maker", "contact_id": "<b>c2</b>"},
        {"occurred_at": "2025-04-15T11:00:00", "type": "call", "direction": None, "contact_role": None,
         "contact_id": None},
    ]
    stages = [{"changed_at": "2025-03-28T10:00:00", "stage": "discovery", "amount": 50_000.0,
               "expected_close_date": "2025-06-30"},
              {"changed_at": "2025-04-10T10:00:00", "stage": "proposal", "amount": None,
               "expected_close_date": "2025-07-31"}]
    save(store, result("TL1", as_of=T0), touchpoints=touches, stage_changes=stages)
    login(client, "manager")
    html = client.get("/ui/deals/TL1?touchpoints=all").text  # the whole timeline, not only its last weeks
    assert "stored without its touchpoints" not in html
    summary = html.split('data-testid="touch-summary"')[1].split("</p>")[0]
    assert "3 touchpoints:" in summary and "1 email" in summary and "1 meeting" in summary
    assert "1 inbound, the last on 09 Apr 2025" in summary
    items = timeline_items(html)
    texts = [re.sub(r"<[^>]+>", " ", i) for i in items]
    order = [next(k for k in ("Outbound email", "Inbound meeting", "Call", "CRM stage set to discovery",
                              "CRM stage moved from discovery to proposal", "First scored", "Warning") if k in t)
             for t in texts]
    assert order == ["First scored", "Warning", "Call", "CRM stage moved from discovery to proposal", "Inbound meeting",
                     "Outbound email", "CRM stage set to discovery"]  # newest first, across kinds
    meeting = items[order.index("Inbound meeting")]
    assert "ev-touch" in meeting and "dir-inbound" in meeting and "with the decision maker" in meeting
    assert '<svg class="icon"' in meeting and 'aria-hidden="true"' in meeting  # the icon is decorative …
    assert "Inbound meeting" in meeting  # … the words say it
    assert "&lt;b&gt;c2&lt;/b&gt;" in meeting and "<b>c2</b>" not in html  # CRM text is escaped
    assert "dir-outbound" in items[order.index("Outbound email")]
    assert "ev-stage" in items[order.index("CRM stage set to discovery")]
    assert "Expected close 30 Jun 2025 → 31 Jul 2025" in items[order.index(
        "CRM stage moved from discovery to proposal")]
    assert "Show all" not in html  # nothing hidden


def test_deal_page_shows_the_newest_touchpoints_and_links_to_all(client: TestClient, store: ScoreStore) -> None:
    touches = [{"occurred_at": (T0 - timedelta(hours=i)).isoformat(), "type": "email", "direction": "inbound"}
               for i in range(70)]
    save(store, result("TL2", as_of=T0), touchpoints=touches, stage_changes=[])
    login(client, "manager")
    page = client.get("/ui/deals/TL2?back=/ui?team=NA").text
    assert sum("ev-touch" in i for i in timeline_items(page)) == 60
    assert "10 earlier events hidden" in page
    link = re.search(r'<a href="([^"]+)">Show all</a>', page)
    assert link is not None
    everything = client.get("/ui/deals/TL2" + link.group(1).replace("&amp;", "&").split("#")[0]).text
    assert sum("ev-touch" in i for i in timeline_items(everything)) == 70
    assert "Showing the whole timeline" in everything and 'href="/ui?team=NA"' in everything  # back link kept


def test_deal_page_without_touchpoints_says_so(client: TestClient, store: ScoreStore) -> None:
    save(store, result("TL3", as_of=T0), touchpoints=[], stage_changes=[])
    login(client, "manager")
    html = client.get("/ui/deals/TL3").text
    assert "No touchpoints were sent with the latest score" in html and "stored without" not in html


def test_unknown_deal_and_unknown_page(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    missing = client.get("/ui/deals/NOPE")
    assert missing.status_code == 404 and "There are no scores for deal &#39;NOPE&#39;" in missing.text
    assert "POST /v1/score" in missing.text
    other = client.get("/ui/elsewhere")
    assert other.status_code == 404 and other.headers["content-type"].startswith("text/html")
    assert client.get("/ui/static/ui.css").status_code == 200


def test_a_deal_page_url_it_cannot_read_is_refused_not_half_read(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    for url, said in (("/ui/deals/D1?touchpoints=al", "touchpoints=&#39;al&#39; is not known"),
                      ("/ui/deals/D1?touchpoint=all", "The deal page has no parameter &#39;touchpoint&#39;"),
                      ("/ui/deals/D1?back=/ui&back=/ui/forecast", "is given 2 times"),
                      ("/ui/deals/D1?touchpoints=%FF", "is not UTF-8 text")):
        page = client.get(url)
        assert page.status_code == 422 and said in page.text, url
        assert "Open the deal from the list" in page.text
    assert client.get("/ui/deals/D1?touchpoints=all&back=/ui").status_code == 200
    long_list = "/ui?" + urlencode({"owner": "a" * 150, "team": "t" * 150, "stage": "proposal"})
    assert client.get("/ui/deals/D1?" + urlencode({"back": long_list})).status_code == 200  # a list's own link


def test_html_in_data_is_escaped(client: TestClient, store: ScoreStore) -> None:
    evil = "<script>alert(1)</script>"
    save(store, result("X<1>", owner=evil, team="NA", account=evil))
    login(client, "manager")
    page = client.get("/ui").text
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "/ui/deals/X%3C1%3E" in page
    deal = client.get("/ui/deals/X%3C1%3E")
    assert deal.status_code == 200 and evil not in deal.text


def test_empty_store_says_what_to_do(client: TestClient) -> None:
    login(client, "manager")
    page = client.get("/ui").text
    assert "No scores yet: send deals to <code>POST /v1/score</code>" in page
    assert "No model is loaded right now" in page


def test_limited_key_with_nothing_visible(client: TestClient, store: ScoreStore) -> None:
    save(store, result("D9", team="NA"))
    login(client, "emea")
    page = client.get("/ui").text
    assert "No open deals of yours have been scored" in page and "team EMEA" in page
    assert "holds 1 score" not in page  # other teams' scores are not this key's to count


def test_only_closed_deals(client: TestClient, store: ScoreStore) -> None:
    save(store, result("C9"), is_open=False)
    login(client, "manager")
    assert "Every deal the service has scored is closed" in client.get("/ui").text


def test_a_closed_deal_keeps_its_page(client: TestClient, store: ScoreStore) -> None:
    """Closed the way a CRM closes it, through ``POST /v1/deals/{id}/outcome``: the outcome changes the deal's
    stored state and writes no score, so the page reads that state (a score row saved closed, as this test
    once built it, never happens)."""
    save(store, result("C2", as_of=T0 - timedelta(days=7)))
    save(store, result("C2", as_of=T0))
    closed = client.post("/v1/deals/C2/outcome", headers={"X-API-Key": key("crm")},
                         json={"outcome": "lost", "closed_at": (T0 + timedelta(days=1)).isoformat() + "Z"})
    assert closed.status_code == 200, closed.text
    assert [s.is_open for s in store.deal_scores("C2")] == [True, True]  # no score says closed
    login(client, "manager")
    page = client.get("/ui/deals/C2").text
    assert '<span class="badge">closed</span>' in page and "Deal closed" in page
    assert "Lost on 02 May 2025" in page
    assert "Value at risk" not in page  # its outcome is known: nothing is at risk any more
    assert '<dd data-testid="outcome">Lost on 02 May 2025: nothing left at risk</dd>' in page
    # the last open score is history now: no action to take on a closed deal, the score named for what it is
    assert "Call the champion" not in page and "None: the deal is closed (lost on 02 May 2025)" in page
    assert "Win probability at its last open score" in page and "Warnings at its last open score" in page
    assert 'data-deal="C2"' not in client.get("/ui").text


def test_an_owner_limited_key_gets_the_forecast_page_by_owner(client: TestClient) -> None:
    """The API refuses by=team for a key limited to owners (422 at ``by``); the page's default for that key is by
    owner, and a URL asking by team (or for an unknown period) gets the page's own 422 saying what to ask instead,
    never a forecast other than the one asked for."""
    login(client, "ana")
    resp = client.get("/ui/forecast")  # no model loaded here: the page's own 503, past the grouping
    assert resp.status_code == 503 and resp.headers["content-type"].startswith("text/html"), resp.text
    assert "No forecast yet" in resp.text
    for path, said in (("/ui/forecast?by=team", "it forecasts by owner, not by team"),
                       ("/ui/forecast?period=week", "period &#39;week&#39; is not month or quarter")):
        resp = client.get(path)
        assert resp.status_code == 422 and resp.headers["content-type"].startswith("text/html"), resp.text
        assert "Forecast not made" in resp.text and said in resp.text and "by=owner" in resp.text


def test_model_page_without_a_model(client: TestClient) -> None:
    login(client, "manager")
    page = client.get("/ui/model")
    assert page.status_code == 200
    assert "No model loaded" in page.text and "dealscore train" in page.text
    assert "DEALSCORE_USE_REGISTRY=false" in page.text  # the service's own reason


def test_store_outage_is_a_503_page(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
    app = build_app(settings)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        login(c, "manager")
        for path in ("/ui", "/ui/deals/D1"):
            resp = c.get(path)
            assert resp.status_code == 503, path
            assert resp.headers["retry-after"] == str(settings.store_retry_after_seconds)
            assert "Score store unavailable" in resp.text and "DEALSCORE_DATABASE_URL" in resp.text


def test_the_back_link_says_where_it_goes(client: TestClient, seeded: ScoreStore) -> None:
    login(client, "manager")
    from_forecast = client.get("/ui/deals/D1?back=%2Fui%2Fforecast").text
    assert '<a href="/ui/forecast">← Forecast</a>' in from_forecast
    assert '<a href="/ui?owner=ana">← Deals at risk</a>' in client.get("/ui/deals/D1?back=%2Fui%3Fowner%3Dana").text


def test_a_limited_keys_forecast_total_is_not_called_the_company() -> None:
    assert group_label("company", Principal("all", frozenset({Scope.read}))) == "company"
    assert group_label("company", Principal("emea", frozenset({Scope.read}), teams=frozenset({"EMEA"}))) == "your team"
    assert group_label("company", Principal("eu", frozenset({Scope.read}), teams=frozenset({"EMEA", "DACH"}))) == (
        "your teams")
    assert group_label("company", Principal("ana", frozenset({Scope.read}), owners=frozenset({"ana"}))) == "your deals"
    assert group_label("EMEA", Principal("emea", frozenset({Scope.read}), teams=frozenset({"EMEA"}))) == "EMEA"


def test_totals_of_deals_in_several_currencies_are_given_per_currency(client: TestClient, store: ScoreStore) -> None:
    """EUR and JPY are never added into one number: the header shows one total per currency."""
    save(store, result("EU1", amount=100_000).model_copy(update={"currency": "EUR"}),
         result("JP1", amount=5_000_000).model_copy(update={"currency": "JPY"}),
         result("EU2", amount=50_000).model_copy(update={"currency": "EUR"}))
    login(client, "manager")
    page = client.get("/ui").text
    totals = page.split('data-testid="pipeline-value">')[1].split("</ul>")[0]
    assert re.findall(r"<li>([^<]+) <span class=\"currency\">(\w+)</span></li>", totals) == [
        ("5M", "JPY"), ("150k", "EUR")]
    assert "5.15M" not in page and "in 2 currencies, totalled apart" in page
    share = page.split('data-testid="share-at-risk">')[1].split("</ul>")[0]
    assert share.count("<li>") == 2 and "15%" in share  # 0.30 against a usual 0.45: a third of each, 15 points
    alone = client.get("/ui?min_amount=1000000").text  # only the JPY deal: one total, with its currency
    assert '<span class="stat-value" data-testid="pipeline-value">5M <span class="currency">JPY</span></span>' in alone
    # the currencies mix: the form offers one at a time, so that the ranking compares like money
    menu = page.split('<select id="f-currency" name="currency">')[1].split("</select>")[0]
    assert re.findall(r'<option value="(\w*)"', menu) == ["", "EUR", "JPY"]
    eur = client.get("/ui?currency=eur")
    assert eur.status_code == 200 and deal_ids(eur.text) == ["EU1", "EU2"]
    assert '<option value="EUR" selected>EUR</option>' in eur.text and 'href="?currency=EUR&amp;sort=' in eur.text
    assert "totalled apart" not in eur.text
    refused = client.get("/ui?currency=euros")
    assert refused.status_code == 422 and "Currency &#39;euros&#39; is not an ISO 4217 currency code" in refused.text
    assert '<option value="euros" selected>euros (cannot be used)</option>' in refused.text


def test_one_currency_offers_no_currency_menu(client: TestClient, store: ScoreStore) -> None:
    save(store, result("EU1", amount=100_000).model_copy(update={"currency": "EUR"}))
    login(client, "manager")
    assert 'name="currency"' not in client.get("/ui").text



def test_the_forecast_says_when_its_amounts_mix_currencies(store: ScoreStore) -> None:
    from types import SimpleNamespace

    import pandas as pd

    fc: Any = SimpleNamespace(as_of=pd.Timestamp(T0), kind="quarter")  # the forecast's time and period
    manager = Principal("manager", frozenset({Scope.read}))
    save(store, *(result(d).model_copy(update={"currency": "EUR"}) for d in ("EU1", "EU2")))
    assert mixed_currencies(forecast_currencies(store, manager, fc)) == []  # one currency: nothing to say
    save(store, result("US1", team="EMEA").model_copy(update={"currency": "USD"}), result("NO1"))
    assert mixed_currencies(forecast_currencies(store, manager, fc)) == ["EUR", "USD", "no currency"]
    emea = Principal("emea", frozenset({Scope.read}), teams=frozenset({"EMEA"}))
    assert mixed_currencies(forecast_currencies(store, emea, fc)) == []  # only the deals the key sees count
    # a win it books counts too: GBP closed this quarter, though no open deal is in GBP
    save(store, result("GB1", team="EMEA").model_copy(update={"currency": "GBP"}))
    store.record_outcome("GB1", "won", T0 - timedelta(days=1), key_name="test")
    assert mixed_currencies(forecast_currencies(store, emea, fc)) == ["GBP", "USD"]
