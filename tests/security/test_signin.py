"""Sign-in: guessing is rate-limited per user name and per client address, a session id
planted before the sign-in never becomes a signed-in one (fixation), and a cookie-authenticated
write without the session's CSRF token is refused. The real app in process (``TestClient``),
a real SQLite database."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cpt_contract.roles import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE

RIGHT = "the-right-password-1"


def _user(admin: TestClient, name: str, role: str = "operator") -> None:
    r = admin.post("/api/users", json={"name": name, "role": role, "password": RIGHT})
    assert r.status_code == 201, r.text


def _browser(admin: TestClient, base_url: str = "http://testserver") -> TestClient:
    return TestClient(admin.app, base_url=base_url)


def _sign_in(browser: TestClient, name: str, password: str = RIGHT) -> Any:
    return browser.post("/api/session", json={"name": name, "password": password})


def _guess_until_refused(browser: TestClient, name: Any, limit: int) -> int:
    """Wrong passwords until a 429; returns how many were answered 401."""
    for i in range(limit + 1):
        r = _sign_in(browser, name(i), "guess-guess")
        if r.status_code == 429:
            return i
        assert r.status_code == 401, r.text
    raise AssertionError(f"{limit + 1} wrong passwords and never a 429")


def test_guessing_one_users_password_is_stopped_per_name(client: TestClient) -> None:
    _user(client, "alice")
    _user(client, "bob")
    browser = _browser(client)
    # 5 at once (the bucket drains one per 30 s: a slow box may allow one more).
    tries = _guess_until_refused(browser, lambda i: "alice", limit=7)
    assert 5 <= tries <= 7
    r = _sign_in(browser, "alice")  # the right password, too late: nothing to learn
    assert r.status_code == 429, r.text
    assert "as alice" in r.json()["detail"] and int(r.headers["Retry-After"]) > 0
    # Another name from the same address is not locked out (the address's bucket has room).
    assert _sign_in(browser, "bob").status_code == 200
    rows = client.get("/api/audit", params={"action": "session.sign_in_failed"}).json()
    assert len([r for r in rows if r["actor"] == "alice"]) == tries
    assert all("guess" not in str(r) for r in rows)  # no password in the log


def test_guessing_many_names_is_stopped_per_client(client: TestClient) -> None:
    _user(client, "carol")
    browser = _browser(client)
    # 10 at once, each name guessed once (drains one per 6 s: a slow box allows a few more).
    tries = _guess_until_refused(browser, lambda i: f"nobody{i}", limit=30)
    assert 10 <= tries <= 30
    r = _sign_in(browser, "carol")
    assert r.status_code == 429, r.text
    assert "from testclient" in r.json()["detail"]


def _plant(browser: TestClient, value: str | None) -> None:
    """A cookie as a sibling site or a script would set it: for the panel's host."""
    assert value
    browser.cookies.set(SESSION_COOKIE, value, domain="testserver.local")


def test_a_planted_session_id_never_becomes_signed_in(client: TestClient) -> None:
    _user(client, "dave")
    _user(client, "mallory")
    # 1. An id the attacker made up: ignored, and replaced at sign-in.
    victim = _browser(client)
    _plant(victim, "planted-by-the-attacker")
    assert victim.get("/api/me").status_code == 401
    assert _sign_in(victim, "dave").status_code == 200
    assert victim.cookies.get(SESSION_COOKIE) != "planted-by-the-attacker"
    attacker = _browser(client)
    _plant(attacker, "planted-by-the-attacker")
    assert attacker.get("/api/me").status_code == 401
    # 2. The attacker's own real session planted in the victim's browser: signing in ends it.
    attacker = _browser(client)
    assert _sign_in(attacker, "mallory").status_code == 200
    planted = attacker.cookies.get(SESSION_COOKIE)
    victim = _browser(client)
    _plant(victim, planted)
    assert victim.get("/api/me").json()["name"] == "mallory"
    assert _sign_in(victim, "dave").status_code == 200
    assert victim.cookies.get(SESSION_COOKIE) != planted
    assert victim.get("/api/me").json()["name"] == "dave"
    assert attacker.get("/api/me").status_code == 401  # the planted id is gone server-side


def test_cookie_writes_need_the_sessions_csrf_token(client: TestClient) -> None:
    _user(client, "erin")
    _user(client, "frank")
    erin = _browser(client)
    csrf = _sign_in(erin, "erin").json()["csrf_token"]
    assert erin.cookies.get(CSRF_COOKIE) == csrf
    other = _browser(client)
    other_csrf = _sign_in(other, "frank").json()["csrf_token"]
    body = {"name": "from-a-form"}
    for headers in ({}, {CSRF_HEADER: "forged"}, {CSRF_HEADER: other_csrf}):
        r = erin.post("/api/tokens", json=body, headers=headers)
        assert r.status_code == 403, (headers, r.text)
        assert CSRF_HEADER in r.json()["detail"]
    assert client.get("/api/tokens").json() == []  # nothing was made
    r = erin.post("/api/tokens", json=body, headers={CSRF_HEADER: csrf})
    assert r.status_code == 201, r.text
    # Reads need no token; sign-out is a write like any other.
    assert erin.get("/api/me").status_code == 200
    assert erin.delete("/api/session").status_code == 403
    assert erin.delete("/api/session", headers={CSRF_HEADER: csrf}).status_code == 204
    assert erin.get("/api/me").status_code == 401


def test_session_cookies_are_httponly_strict_and_secure_over_tls(client: TestClient) -> None:
    _user(client, "gina")
    plain = _browser(client)
    cookies = _sign_in(plain, "gina").headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Secure" not in session
    csrf = next(c for c in cookies if c.startswith(CSRF_COOKIE + "="))
    assert "HttpOnly" not in csrf  # the page reads it to echo it
    tls = _browser(client, base_url="https://testserver")
    cookies = _sign_in(tls, "gina").headers.get_list("set-cookie")
    assert all("Secure" in c for c in cookies), cookies


def test_personal_tokens_are_shown_once_hashed_and_revocable(client: TestClient) -> None:
    _user(client, "hank")
    browser = _browser(client)
    csrf = {CSRF_HEADER: _sign_in(browser, "hank").json()["csrf_token"]}
    made = browser.post("/api/tokens", json={"name": "ci", "expires_in_days": 7}, headers=csrf)
    assert made.status_code == 201
    secret, token_id = made.json()["token"], made.json()["id"]
    listed = browser.get("/api/tokens").json()
    assert [t["name"] for t in listed] == ["ci"] and "token" not in listed[0]
    cli = TestClient(client.app, headers={"Authorization": f"Bearer {secret}"})
    assert cli.get("/api/me").json() == {
        "name": "hank",
        "role": "operator",
        "via": "token",
        "max_live_runs": None,
        "max_queued_runs": None,
    }
    from sqlmodel import Session, select

    from backend.core.db import get_engine
    from backend.models import ApiToken

    with Session(get_engine(client.app.state.settings)) as db:
        stored = db.exec(select(ApiToken)).all()
    assert stored and all(secret not in (t.digest, t.name) for t in stored)
    assert browser.delete(f"/api/tokens/{token_id}", headers=csrf).status_code == 204
    assert cli.get("/api/me").status_code == 401
    actions = [r["action"] for r in client.get("/api/audit", params={"user": "hank"}).json()]
    assert {"token.create", "token.revoke", "session.sign_in"} <= set(actions)


def test_a_route_added_without_a_thought_is_safe_and_audited(client: TestClient) -> None:
    """A router as a colleague would add it (the usual token dependency, no role, no audit
    row): its write needs an operator, and the write is still recorded."""
    from fastapi import APIRouter, Depends

    from backend.api.deps import require_api_token

    router = APIRouter(dependencies=[Depends(require_api_token)])

    @router.get("/gadgets")
    def list_gadgets() -> list[str]:
        return []

    @router.post("/gadgets")
    def make_gadget() -> dict[str, str]:
        return {"made": "yes"}

    routes = client.app.router.routes
    before = len(routes)
    client.app.include_router(router, prefix="/api")
    added = routes[before:]
    del routes[before:]
    routes[0:0] = added  # ahead of the built UI's catch-all, as if listed with the others
    _user(client, "ivan", "viewer")
    _user(client, "jane", "operator")
    viewer, operator = _browser(client), _browser(client)
    v = {CSRF_HEADER: _sign_in(viewer, "ivan").json()["csrf_token"]}
    o = {CSRF_HEADER: _sign_in(operator, "jane").json()["csrf_token"]}
    assert viewer.get("/api/gadgets").status_code == 200
    refused = viewer.post("/api/gadgets", headers=v)
    assert refused.status_code == 403 and "operator" in refused.json()["detail"]
    assert operator.post("/api/gadgets", headers=o).status_code == 200
    rows = client.get("/api/audit", params={"target": "/api/gadgets"}).json()
    assert [(r["actor"], r["action"], r["changes"]) for r in rows] == [
        ("jane", "request", {"method": "POST"})
    ]
