"""The authorization matrix: for each role and each protected page or action, allowed or
refused — decided by the server, whatever the page shows."""

from __future__ import annotations

import pytest

from tests.helpers import hidden_fields, login

ROLES = [
    "anonymous",
    "citizen",
    "company",
    "researcher",
    "verified_researcher",
    "developer",
    "curator",
    "bureau",
]
OK, LOGIN, FORBIDDEN, UNAUTHORIZED = "ok", "login", "forbidden", "401"

# (method, path, expected outcome per role in ROLES order)
MATRIX = [
    ("GET", "/account", [LOGIN, OK, OK, OK, OK, OK, OK, OK]),
    ("POST", "/account/tokens", [LOGIN, OK, OK, OK, OK, OK, OK, OK]),
    ("GET", "/api/me", [UNAUTHORIZED, OK, OK, OK, OK, OK, OK, OK]),
    ("GET", "/admin/users", [LOGIN] + [FORBIDDEN] * 6 + [OK]),
    ("GET", "/admin/outbox", [LOGIN] + [FORBIDDEN] * 6 + [OK]),
    ("GET", "/admin/audit", [LOGIN] + [FORBIDDEN] * 6 + [OK]),
    ("POST", "/admin/users/{target}/verify-researcher", [LOGIN] + [FORBIDDEN] * 6 + [OK]),
    ("POST", "/admin/users/{target}/verify-company", [LOGIN] + [FORBIDDEN] * 6 + [OK]),
    ("GET", "/admin/calendar", [LOGIN] + [FORBIDDEN] * 6 + [OK]),
    ("POST", "/admin/users/{target}/curator", [LOGIN] + [FORBIDDEN] * 6 + [OK]),
    ("POST", "/admin/users/{target}/bureau/grant", [LOGIN] + [FORBIDDEN] * 6 + [OK]),
]
CASES = [
    (method, path, role, expected[i]) for method, path, expected in MATRIX for i, role in enumerate(ROLES)
]


@pytest.fixture
def people(make_user):
    made = {
        "citizen": make_user("citizen"),
        "company": make_user("company"),
        "researcher": make_user("researcher"),
        "verified_researcher": make_user("researcher", researcher_verified=True),
        "developer": make_user("developer"),
        "curator": make_user(curator_of="dcf-jtysj"),
        "bureau": make_user(bureau=True),
    }
    made["target"] = make_user("researcher")
    return made


def outcome(response) -> str:
    if response.status_code == 302 and "/login" in response.headers["Location"]:
        return LOGIN
    if response.status_code == 403:
        return FORBIDDEN
    if response.status_code == 401:
        return UNAUTHORIZED
    assert response.status_code in (200, 302), response.status_code
    return OK


@pytest.mark.parametrize("method,path,role,expected", CASES, ids=[f"{m} {p} as {r}" for m, p, r, _ in CASES])
def test_matrix(app, people, method, path, role, expected):
    client = app.test_client()
    if role != "anonymous":
        _, email, password = people[role]
        assert login(client, email, password).status_code == 302
    url = path.format(target=people["target"][0])
    if method == "GET":
        response = client.get(url)
    else:
        # a valid CSRF token from a page anyone can open, so only authorization decides
        html = client.get("/register" if role == "anonymous" else "/account").get_data(as_text=True)
        data = {**hidden_fields(html), "name": "t", "days": "30", "department": ""}
        response = client.post(url, data=data)
    assert outcome(response) == expected


def test_a_token_carries_its_users_rights_and_no_more(app, people):
    from portal import accounts
    from portal.models import User

    ctx = app.extensions["portal"]
    tokens = {}
    for role in ("citizen", "bureau"):
        with ctx.sessions() as s:
            _, tokens[role] = accounts.create_token(s, s.get(User, people[role][0]), "t", 30)
            s.commit()
    client = app.test_client()
    assert (
        client.get("/admin/users", headers={"Authorization": f"Bearer {tokens['citizen']}"}).status_code
        == 403
    )
    assert (
        client.get("/admin/users", headers={"Authorization": f"Bearer {tokens['bureau']}"}).status_code == 200
    )
