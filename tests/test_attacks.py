"""Attack suite: every route of the portal tried anonymously, as an unrelated citizen, as
another department's curator, with hostile path values and parameters, with CSRF-less posts,
oversized and malformed bodies. Nothing may answer 500, nothing not open or held may appear,
and nothing in the database may change.

The routes come from the app's own URL map, so a route added later is attacked too."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.app import create_app
from portal.models import (
    Application,
    ApplicationEvent,
    Bid,
    ClassificationEvent,
    Dataset,
    ErrorReport,
    Grant,
    Rating,
    Tender,
    User,
)
from tests.helpers import login, post_form

SECRET_TITLES = [
    "执法检查底稿",
    "公益岗位人员名单",
    "11010519491231002X",
]  # not open; held; the held file's ID number
HOSTILE = [
    "../../../../etc/passwd",
    "..%2F..%2Fsecret_key",
    "' OR '1'='1",
    "1; DROP TABLE datasets;--",
    "{{ 'ab' * 3 }}",
    "${7*7}",
    "%00",
    "a" * 3000,
    "-1",
    "99999999999999999999",
    "名单\u202e",
]
QUERY_PROBES = {
    "q": "' OR 1=1 --",
    "page": "-5",
    "rows": "abc",
    "sort": "name; DROP TABLE users",
    "start": "99999999999999999999",
    "limit": "-1",
    "offset": "x",
    "fq": 'organization:"\\" OR 1',
    "id": "../../etc/passwd",
    "name": "a\x00b",
    "lang": "{{ 'ab' * 3 }}",
    "format": "../../x",
    "eq[所属街道]": "' OR 1=1",
}
TABLES = [
    User,
    Dataset,
    ClassificationEvent,
    Application,
    ApplicationEvent,
    Grant,
    Tender,
    Bid,
    ErrorReport,
    Rating,
]


@pytest.fixture
def world(settings, portal_data, make_user):
    """The portal with people, an application with a grant, and an open tender."""
    from tests.helpers import accept, approve, make_tender, submit

    people = {
        "citizen": make_user("citizen"),
        "other_curator": make_user(curator_of="dcf-jtysj"),
        "applicant": make_user("company"),
        "curator": make_user(curator_of="dcf-scjgj"),
        "bureau": make_user(bureau=True),
    }
    with portal_data.sessions() as s:
        app_ = submit(s, s.get(User, people["applicant"][0]))
        approve(s, s.get(User, people["curator"][0]), app_)
        accept(s, s.get(User, people["applicant"][0]), app_)
        tender = make_tender(s, people)
        ids = {
            "app_id": app_.id,
            "grant_id": app_.grant.id,
            "tender": tender.number,
            "user_id": people["applicant"][0],
        }
    # Rate limits off: the sweep would otherwise see 429s instead of what each route does.
    app = create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            "TESTING": True,
            "RATELIMIT_ENABLED": False,
        }
    )
    yield app, people, ids
    app.extensions["portal"].engine.dispose()


def counts(ctx) -> dict[str, int]:
    with ctx.sessions() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in TABLES} | {
            "published": s.scalar(
                select(func.count()).select_from(Dataset).where(Dataset.status == "published")
            )
        }


def path_values(rule, ids: dict) -> list[dict]:
    """Real values (so the route's own checks run) and hostile ones, for each argument."""
    real = {
        "name": "371502-scj-0003",
        "code": "dcf-scjgj",
        "number": ids["tender"],
        "table_id": 1,
        "app_id": ids["app_id"],
        "grant_id": ids["grant_id"],
        "user_id": ids["user_id"],
        "token": "x",
        "fmt": "csv",
        "suffix": "ttl",
        "open_class": "not_open",
        "state": "grant",
        "filename": "portal.css",
    }
    args = sorted(rule.arguments)
    if not args:
        return [{}]
    variants = [{a: real.get(a, 1) for a in args}]
    int_args = {a for a, conv in rule._converters.items() if type(conv).__name__ == "IntegerConverter"}
    for hostile in HOSTILE:
        v = {a: (real.get(a, 1) if a in int_args else hostile) for a in args}
        if v not in variants:
            variants.append(v)
    return variants


def _url(rule, values: dict) -> str:
    url = rule.rule
    for name, value in values.items():
        url = re.sub(
            r"<(?:[^:<>]+:)?" + re.escape(name) + r">",
            str(value).replace("/", "%2F") if "path" not in rule.rule else str(value),
            url,
        )
    return url


def leaked(body: str) -> list[str]:
    return [t for t in SECRET_TITLES if t in body] + (["template evaluated"] if "ababab" in body else [])


@pytest.mark.parametrize("who", ["anonymous", "citizen", "other_curator"])
def test_every_route_with_real_and_hostile_values(world, who):
    app, people, ids = world
    ctx = app.extensions["portal"]
    before = counts(ctx)
    client = app.test_client()
    if who != "anonymous":
        _, email, password = people[who]
        assert login(client, email, password).status_code == 302
    # The read-only CKAN API answers POST (ckanapi sends it) without a CSRF token and changes nothing.
    csrf_exempt = {
        r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith(("api.", "api_unversioned."))
    }
    failures = []
    tried, answered = 0, 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "accounts.logout":
            continue  # would end this client's session mid-sweep
        for values in path_values(rule, ids):
            url = _url(rule, values)
            for method in sorted(rule.methods & {"GET", "POST"}):
                for params in ({}, QUERY_PROBES):
                    if method == "POST" and params:
                        continue
                    response = (
                        client.get(url, query_string=params)
                        if method == "GET"
                        else client.post(url, data={"reason": "{{ 'ab' * 3 }}", "text": "' OR 1=1 --"})
                    )
                    tried += 1
                    answered += response.status_code == 200 and not params
                    body = (
                        response.get_data(as_text=True)
                        if response.mimetype.startswith(("text/", "application/j"))
                        else ""
                    )
                    if response.status_code >= 500:
                        failures.append(
                            f"{method} {url[:120]} {params and 'probes'} → {response.status_code}"
                        )
                    elif bad := leaked(body):
                        failures.append(f"{method} {url[:120]} leaks {bad}")
                    if method == "POST" and response.status_code < 400 and rule.endpoint not in csrf_exempt:
                        failures.append(f"POST {url[:120]} without a CSRF token → {response.status_code}")
    assert tried > 800 and answered > 40  # the sweep reached real pages, not only 404s
    assert failures == []
    assert counts(ctx) == before  # nothing posted without a CSRF token changed anything


def test_another_users_objects_are_refused(world):
    """The applicant's application, grant and tender bid page belong to them; a citizen and
    another department's curator get nothing of them."""
    app, people, ids = world
    for who in ("citizen", "other_curator"):
        client = app.test_client()
        _, email, password = people[who]
        login(client, email, password)
        for url in (f"/applications/{ids['app_id']}", f"/tenders/{ids['tender']}/evaluate"):
            assert client.get(url).status_code in (403, 404), (who, url)
        page = client.get("/grants").get_data(as_text=True)
        assert "DCFL-" not in page  # not someone else's licence numbers
        assert client.get("/console/datasets/371502-scj-0004").status_code in (302, 403, 404)


def test_oversized_and_malformed_bodies(world):
    app, people, _ = world
    client = app.test_client()
    huge = client.post(
        "/login", data=b"x" * (51 * 1024 * 1024), content_type="application/x-www-form-urlencoded"
    )
    assert huge.status_code == 413
    broken = client.post(
        "/register",
        data=b'--boundary\r\nContent-Disposition: form-data; name="a"\r\n\r\nb',
        content_type="multipart/form-data; boundary=boundary",
    )
    assert broken.status_code in (400, 200) and broken.status_code < 500
    for body in (b"{not json", b"[1,2,3]", b'{"q": {"$gt": ""}}', '{"q": "\u0000"}'.encode()):
        response = client.post("/api/3/action/package_search", data=body, content_type="application/json")
        assert response.status_code < 500, body
    assert (
        client.get("/api/3/action/package_search", query_string={"facet.field": "[not json"}).status_code
        == 409
    )


def test_nul_characters_are_refused_plainly(world):
    """PostgreSQL cannot store NUL in text; the portal refuses it before any query, anywhere."""
    app, _, _ = world
    client = app.test_client()
    for response in (
        client.get("/licences/%00"),
        client.get("/search", query_string={"q": "药\x00品"}),
        client.post("/api/3/action/package_show", json={"id": "a\u0000b"}),
    ):
        assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)
    from tests.helpers import hidden_fields

    form = hidden_fields(client.get("/login").get_data(as_text=True))
    posted = client.post("/login", data={**form, "email": "a\x00@example.cn", "password": "x"})
    assert posted.status_code == 400 and "NUL" in posted.get_data(as_text=True)


def test_path_traversal_never_reaches_a_file(world):
    app, _, _ = world
    client = app.test_client()
    for url in (
        "/dataset/371502-scj-0001/download/1.csv/../../secret_key",
        "/static/../instance/secret_key",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/domain/..%2F..%2Fetc%2Fpasswd",
        "/dataset/..%2F..%2Fsecret_key/datapackage.json",
    ):
        response = client.get(url)
        assert response.status_code in (301, 308, 400, 404), url
        assert "root:" not in response.get_data(as_text=True)
    storage = app.extensions["portal"].storage
    for relative in ("../secret_key", "/etc/passwd", "a/../../b"):
        with pytest.raises(ValueError):
            storage.local_path(relative)


def test_expired_and_tampered_signed_links(world):
    """Reset, verification and licensed-download links: tampered or expired, all refused."""
    app, people, ids = world
    client = app.test_client()
    verify = client.get("/verify/WyJ4Il0.bad.sig", follow_redirects=True)
    assert verify.status_code == 200 and "链接无效或已被修改" in verify.get_data(as_text=True)
    reset = post_form(
        client,
        "/reset/eyJ1Ijo1fQ.tampered.sig",
        {"password": "New-long-password-9", "confirm": "New-long-password-9"},
    )
    assert "链接无效或已被修改" in reset.get_data(as_text=True)
    shown = client.get("/reset/eyJ1Ijo1fQ.tampered.sig", follow_redirects=True)  # no form to type into first
    assert "链接无效或已被修改" in shown.get_data(as_text=True) and shown.request.path == "/reset"
    _, email, password = people["applicant"]
    login(client, email, password)
    from itsdangerous import URLSafeTimedSerializer

    old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="dongchangfu-portal:licensed-download")
    import time
    from unittest import mock

    with mock.patch("itsdangerous.timed.time.time", return_value=time.time() - 3600):
        stale = old.dumps({"u": people["applicant"][0], "g": ids["grant_id"], "i": 1})
    assert client.get(f"/grants/{ids['grant_id']}/download/{stale}").status_code == 403
    forged = URLSafeTimedSerializer("not-the-key", salt="dongchangfu-portal:licensed-download").dumps(
        {"u": people["applicant"][0], "g": ids["grant_id"], "i": 1}
    )
    assert client.get(f"/grants/{ids['grant_id']}/download/{forged}").status_code == 403
