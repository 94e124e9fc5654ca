"""Login, the signed session cookie, sign-out and the page's security headers."""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi.testclient import TestClient
from starlette.requests import Request

from dealscore_service.ui.session import COOKIE_NAME, SECRET_FILE, SessionManager
from tests.ui.ui_helpers import KEYS, build_app, key, keys_json, login, make_settings


def _set_cookie_header(resp) -> str:  # type: ignore[no-untyped-def]
    headers = [v for k, v in resp.headers.multi_items() if k.lower() == "set-cookie"]
    assert len(headers) == 1, headers
    return headers[0]


def _get_with(client: TestClient, path: str, cookie: str | None):  # type: ignore[no-untyped-def]
    """A request carrying exactly this session cookie (whatever the client's jar holds)."""
    client.cookies.clear()
    return client.get(path, headers={"Cookie": f"{COOKIE_NAME}={cookie}"})


def test_pages_redirect_to_login_and_back(client: TestClient) -> None:
    resp = client.get("/ui/deals/D1?back=/ui")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/ui/login?next=%2Fui%2Fdeals%2FD1%3Fback%3D%2Fui"
    form = client.get(resp.headers["location"])
    assert form.status_code == 200
    assert '<label for="api_key">API key</label>' in form.text
    assert 'value="/ui/deals/D1?back=/ui"' in form.text
    after = client.post("/ui/login", data={"api_key": key("manager"), "next": "/ui/deals/D1?back=/ui"})
    assert after.status_code == 303 and after.headers["location"] == "/ui/deals/D1?back=/ui"


def test_cookie_is_secure_httponly_signed_and_holds_no_key(client: TestClient) -> None:
    resp = client.post("/ui/login", data={"api_key": key("manager"), "next": "/ui"})
    assert resp.status_code == 303
    header = _set_cookie_header(resp)
    assert header.startswith(f"{COOKIE_NAME}=")
    lowered = header.lower()
    for flag in ("httponly", "secure", "samesite=lax", "path=/"):
        assert flag in lowered, header
    value = header.split(";")[0].split("=", 1)[1]
    raw = key("manager")
    assert raw not in value
    assert base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=") not in value
    assert client.get("/ui").status_code == 200


def test_wrong_key_and_score_only_key_are_refused(client: TestClient) -> None:
    empty = client.post("/ui/login", data={"api_key": "", "next": "/ui"})
    assert empty.status_code == 401 and "Type or paste your API key" in empty.text
    wrong = client.post("/ui/login", data={"api_key": "not-a-key", "next": "/ui"})
    assert wrong.status_code == 401
    assert "not known to the service" in wrong.text
    assert 'aria-invalid="true"' in wrong.text
    assert "set-cookie" not in wrong.headers
    crm = client.post("/ui/login", data={"api_key": key("crm"), "next": "/ui"})
    assert crm.status_code == 403
    assert "needs a key with the read scope" in crm.text
    assert client.get("/ui").status_code == 303


def test_admin_key_may_read(client: TestClient) -> None:
    login(client, "admin")
    assert client.get("/ui").status_code == 200


def test_tampered_or_expired_cookie_sends_back_to_login(client: TestClient) -> None:
    login(client, "manager")
    good = client.cookies.get(COOKIE_NAME)
    assert good
    assert _get_with(client, "/ui", good).status_code == 200
    assert _get_with(client, "/ui", good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")).status_code == 303
    manager = SessionManager("s3cret", max_age=-1)  # every cookie is already too old
    scope = {"type": "http", "headers": [(b"cookie", f"{COOKIE_NAME}={good}".encode())]}
    assert manager.read(Request(scope)) is None


def test_no_open_redirect(client: TestClient) -> None:
    for target in ("https://evil.example/ui", "//evil.example/ui", "/v1/model", "/ui\\@evil.example"):
        resp = client.post("/ui/login", data={"api_key": key("manager"), "next": target})
        assert resp.headers["location"] == "/ui", target


def test_cross_site_posts_are_refused(client: TestClient) -> None:
    resp = client.post("/ui/login", data={"api_key": key("manager"), "next": "/ui"},
                       headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403 and "set-cookie" not in resp.headers
    proxied = client.post("/ui/login", data={"api_key": key("manager"), "next": "/ui"},
                          headers={"Origin": "https://crm.example.com", "X-Forwarded-Host": "crm.example.com"})
    assert proxied.status_code == 303  # a proxy that passes the original host on
    client.cookies.clear()
    login(client, "manager")
    page = client.get("/ui").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    refused = client.post("/ui/logout", data={"csrf": "wrong"})
    assert refused.status_code == 403
    assert client.get("/ui").status_code == 200  # still signed in
    copied = client.cookies.get(COOKIE_NAME)
    out = client.post("/ui/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login?notice=out"
    assert 'max-age=0' in _set_cookie_header(out).lower()
    assert client.get("/ui").status_code == 303
    # the session ended on the server: a cookie copied before signing out no longer works
    client.cookies.set(COOKIE_NAME, copied)
    assert client.get("/ui").status_code == 303
    assert client.get("/ui/login").status_code == 200  # the login form, not a redirect into the page
    client.cookies.clear()
    login(client, "manager")  # a new session works
    assert client.get("/ui").status_code == 200


def test_secret_is_shared_through_the_data_dir_and_removed_keys_lose_access(tmp_path: Path) -> None:
    app_a = build_app(make_settings(tmp_path))
    with TestClient(app_a, base_url="https://testserver", follow_redirects=False) as a:
        login(a, "manager")
        cookie = a.cookies.get(COOKIE_NAME)
    secret_file = tmp_path / SECRET_FILE
    assert secret_file.is_file() and (secret_file.stat().st_mode & 0o777) == 0o600
    # a second worker (or a restart) with the same data folder accepts the session
    app_b = build_app(make_settings(tmp_path))
    with TestClient(app_b, base_url="https://testserver", follow_redirects=False) as b:
        assert _get_with(b, "/ui", cookie).status_code == 200
    # after the key is removed from the configuration, the same cookie no longer works
    fewer = {k: v for k, v in KEYS.items() if k != "manager"}
    app_c = build_app(make_settings(tmp_path, api_keys=keys_json(fewer)))
    with TestClient(app_c, base_url="https://testserver", follow_redirects=False) as c:
        resp = _get_with(c, "/ui", cookie)
        assert resp.status_code == 303 and "notice=revoked" in resp.headers["location"]
        assert "no longer valid" in c.get(resp.headers["location"]).text


def test_env_secret_wins_over_the_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DEALSCORE_UI_SESSION_SECRET", "from-the-environment")
    app = build_app(make_settings(tmp_path))
    assert not (tmp_path / SECRET_FILE).exists()
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        login(c, "manager")
        token = c.cookies.get(COOKIE_NAME)
    scope = {"type": "http", "headers": [(b"cookie", f"{COOKIE_NAME}={token}".encode())]}
    assert SessionManager("from-the-environment").read(Request(scope)) is not None
    assert SessionManager("another-secret").read(Request(scope)) is None


def test_security_headers_and_no_key_in_logs(client: TestClient, capfd) -> None:  # type: ignore[no-untyped-def]
    login(client, "manager")
    resp = client.get("/ui")
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-content-type-options"] == "nosniff"
    out, err = capfd.readouterr()
    for raw, _, _ in KEYS.values():
        assert raw not in out + err


def test_plain_http_on_a_lan_address_warns_about_the_cookie(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://10.1.2.3") as c:
        assert "served over plain HTTP" in c.get("/ui/login").text
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert "served over plain HTTP" not in c.get("/ui/login").text


def test_login_page_says_when_no_keys_are_configured(tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path, api_keys=None))
    with TestClient(app, base_url="https://testserver") as c:
        page = c.get("/ui/login").text
        assert "has no API keys configured" in page and "dealscore api-key create" in page
        assert c.post("/ui/login", data={"api_key": "x"}).status_code == 401




def test_the_settings_secret_is_used(tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path, ui_session_secret="from-the-settings"))
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        login(c, "manager")
        token = c.cookies.get(COOKIE_NAME)
    scope = {"type": "http", "headers": [(b"cookie", f"{COOKIE_NAME}={token}".encode())]}
    assert SessionManager("from-the-settings").read(Request(scope)) is not None
    assert not (tmp_path / SECRET_FILE).exists()
