"""Errors are pages of the portal: its layout, the reader's language, what happened and a way
on — never Werkzeug's bare English page. Under /api/ they stay JSON."""

from __future__ import annotations

import pytest

from tests.helpers import login, post_form

SITE = "东昌府区公共数据开放平台"


def page_of(response) -> str:
    return response.get_data(as_text=True)


def in_layout(html: str) -> bool:
    return 'class="site"' in html and 'role="search"' in html and "<!doctype html>" in html.lower()


@pytest.mark.parametrize(
    ("lang", "heading", "way"), [("zh", "页面不存在", "返回首页"), ("en", "Page not found", "Home page")]
)
def test_a_missing_page_is_a_page_of_the_portal_in_the_readers_language(client, lang, heading, way):
    client.set_cookie("lang", lang)
    response = client.get("/no/such/page")
    html = page_of(response)
    assert response.status_code == 404 and in_layout(html)
    assert heading in html and way in html and 'href="/search"' in html
    assert "Not Found" not in html and "The requested URL was not found" not in html
    if lang == "en":
        assert "页面不存在" not in html


def test_a_wrong_method_a_too_long_address_and_a_too_large_post_get_pages(app, client):
    wrong = client.post("/search")
    assert wrong.status_code == 405 and in_layout(page_of(wrong)) and "不支持此操作" in page_of(wrong)
    assert "GET" in wrong.headers["Allow"]
    long = client.get("/search", query_string={"q": "药" * 3000})
    assert long.status_code == 414 and in_layout(page_of(long)) and "网址过长" in page_of(long)
    app.config["MAX_CONTENT_LENGTH"] = 2000
    large = client.post("/login", data={"email": "x" * 5000})
    assert large.status_code == 413 and in_layout(page_of(large)) and "提交的内容过大" in page_of(large)


def test_a_server_error_is_logged_and_answered_with_the_portals_page(app, client, caplog):
    from portal.authz import public

    @public
    def boom() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/boom-for-the-test", "boom", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/boom-for-the-test")
    html = page_of(response)
    assert response.status_code == 500 and in_layout(html) and "服务器出错" in html and "a bug" not in html


def test_ten_wrong_passwords_lock_out_with_a_page_that_says_when_to_try_again(client, auth, make_user):
    _id, email, password = make_user()
    for _ in range(10):
        auth.login(email, "Wrong-password-9")
    client.set_cookie("lang", "en")
    locked = post_form(client, "/login", {"email": email, "password": password}, page="/login")
    html = page_of(locked)
    assert locked.status_code == 429 and in_layout(html)
    seconds = int(locked.headers["Retry-After"])
    import re

    [said] = re.findall(r"Try again in (\d+) seconds", html)
    assert 0 < seconds <= 61 and abs(int(said) - seconds) <= 1 and "Beijing time" in html
    assert "Too Many Requests" not in html and "10 per 1 minute" not in html


def test_a_page_the_reader_may_not_open_says_so_in_the_layout(app, make_user):
    _id, email, password = make_user()
    citizen = app.test_client()
    login(citizen, email, password)
    response = citizen.get("/admin/users")
    assert response.status_code == 403 and in_layout(page_of(response)) and "无权访问" in page_of(response)


def test_under_api_errors_stay_json(client):
    missing = client.get("/api/3/action/package_show", query_string={"id": "no-such-dataset"})
    assert missing.status_code == 404 and missing.is_json and missing.json["success"] is False
    nothing = client.get("/api/no/such/thing")
    assert nothing.status_code == 404 and nothing.is_json


def test_a_dataset_under_review_says_so_instead_of_vanishing(app, portal_data, make_user):
    _id, email, password = make_user(curator_of="dcf-scjgj")
    curator = app.test_client()
    login(curator, email, password)
    post_form(
        curator,
        "/console/datasets/371502-scj-0001/reclassify",
        {"open_class": "conditional", "legal_basis": "《个人信息保护法》第十三条", "reason": "含经营者信息"},
        page="/console/datasets/371502-scj-0001",
    )
    public = app.test_client()
    response = public.get("/dataset/371502-scj-0001")
    html = page_of(response)
    assert response.status_code == 404 and "正在审核或更新" in html and in_layout(html)
    assert "药品零售企业名录" not in html  # nothing of the dataset itself
    # A dataset that was never public (held from the start, or not open) is simply not found.
    for never in ("371502-scj-0004", "371502-scj-0003", "no-such-dataset"):
        other = page_of(public.get(f"/dataset/{never}"))
        assert "正在审核" not in other and "页面不存在" in other


def test_a_database_that_refuses_connections_is_a_503_to_try_again_not_a_500(settings):
    """PostgreSQL's 'too many clients', a restart, a failover: the reader is asked to come back."""
    from sqlalchemy.exc import OperationalError

    from portal.app import create_app

    app = create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            "search_backend": settings.search_backend,
            "TESTING": True,
        }
    )

    @app.get("/_test/database-gone")
    def _gone():
        raise OperationalError("SELECT 1", {}, Exception("FATAL:  sorry, too many clients already"))

    answer = app.test_client().get("/_test/database-gone")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    html = answer.get_data(as_text=True)
    assert (
        "请稍后再试" in html and "too many clients" not in html
    )  # the portal's page; the reason is in the log
    app.extensions["portal"].engine.dispose()
