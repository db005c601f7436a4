"""Unified sign-in (issue 20, item 8): OpenID Connect against a real provider on loopback
(tests/oidc_provider.py) — a new person gets an account, a returning one signs in, an account
links and unlinks, the real-name level is carried and required for research and commercial
applications, and every broken callback ends on the portal's page with a message."""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import select

from portal import clock
from portal.models import AuditEvent, LinkedIdentity, User
from tests.helpers import SCENARIO, SECURITY, login, post_form
from tests.oidc_provider import CLIENT_ID, new_key, portal_config, running_provider


@pytest.fixture
def provider():
    with running_provider() as p:
        yield p


@pytest.fixture
def app(settings, files_store, provider):
    """The portal with unified sign-in on, the bureau requiring level 3 for research and
    commercial applications."""
    from portal.app import create_app

    app = create_app(portal_config(settings, files_store, provider))
    yield app
    app.extensions["portal"].engine.dispose()


def to_provider(client, start="/login/oidc", page="/login"):
    """Press the button: the portal sends the browser to the provider's /authorize."""
    response = post_form(client, start, {}, page=page)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def at_provider(authorize_url: str) -> str:
    """The provider answers (approving or denying as told): where it sends the browser back."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def back_at_portal(client, callback_url: str):
    """The callback, then the page it leads to: (that page's URL path, its text)."""
    parts = urlsplit(callback_url)
    response = client.get(parts.path + "?" + parts.query)
    assert response.status_code == 302, response.get_data(as_text=True)
    where = urlsplit(response.headers["Location"]).path
    return where, client.get(where).get_data(as_text=True)


def sign_in(client, start="/login/oidc", page="/login"):
    return back_at_portal(client, at_provider(to_provider(client, start, page)))


def identities(app):
    with app.extensions["portal"].sessions() as s:
        return [(i.subject, i.user.email, i.real_name_level) for i in s.scalars(select(LinkedIdentity))]


def events(app, action):
    with app.extensions["portal"].sessions() as s:
        return [e.detail for e in s.scalars(select(AuditEvent).where(AuditEvent.action == action))]


# ---------------------------------------------------------------------- signing in


def test_the_login_page_offers_the_button_and_the_flow_uses_pkce_state_and_nonce(client, provider):
    page = client.get("/login").get_data(as_text=True)
    assert "使用统一身份认证登录" in page and "爱山东 / 统一身份认证" in page
    query = dict(parse_qsl(urlsplit(to_provider(client)).query))
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) >= 43
    assert query["state"] and query["nonce"] and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == "http://localhost/login/oidc/callback"


def test_a_new_person_gets_an_account_from_the_verified_claims(app, client, provider):
    where, page = sign_in(client)
    assert where == "/account"
    assert "已通过统一身份认证创建账户并登录" in page and "孙实名" in page and "sun@example.cn" in page
    assert "3 级" in page  # the real-name level, on the account page's section
    with app.extensions["portal"].sessions() as s:
        user = s.scalar(select(User).where(User.email == "sun@example.cn"))
        assert user.email_verified_at is not None and user.password_hash == ""
    assert identities(app) == [(provider.person["sub"], "sun@example.cn", 3)]
    assert {"via": "oidc", "kind": "citizen"}.items() <= events(app, "register")[0].items()
    # Without a password the identity cannot be unlinked: the account would be locked out.
    assert "/unlink" not in page and "先通过“忘记密码”设置密码" in page


def test_an_unverified_email_is_not_taken(app, client, provider):
    provider.person.update(email="claimed@example.cn", email_verified=False)
    where, page = sign_in(client)
    assert where == "/account" and "claimed@example.cn" not in page
    assert "占位地址" in page  # the person is told their account has no address that receives mail
    [(_sub, email, _level)] = identities(app)
    assert email.endswith("@unified-id.invalid")


def test_a_returning_person_signs_into_the_same_account_and_the_level_is_refreshed(app, provider):
    first = app.test_client()
    sign_in(first)
    provider.person["real_name_level"] = 4
    provider.person["name"] = "孙实名（改）"
    again = app.test_client()
    where, page = sign_in(again)
    assert where == "/account" and "已通过统一身份认证登录" in page and "4 级" in page
    assert identities(app) == [(provider.person["sub"], "sun@example.cn", 4)]
    with app.extensions["portal"].sessions() as s:
        assert (
            s.scalar(select(User).where(User.email == "sun@example.cn")).name == "孙实名"
        )  # the account's own
        assert len(s.scalars(select(User)).all()) == 1


def test_no_account_is_taken_over_by_a_matching_email(app, client, provider, make_user):
    """An identity whose verified address belongs to an existing account is not linked to it:
    the person signs in with the password and links from the account page."""
    _uid, email, _pw = make_user()
    provider.person["email"] = email
    where, page = sign_in(client)
    assert where == "/login"
    assert "已有账户" in page and "关联统一身份认证" in page and "不会按邮箱自动关联" in page
    assert identities(app) == []
    assert client.get("/account").status_code == 302  # not signed in
    assert events(app, "login_failed")[-1]["via"] == "oidc"


# ---------------------------------------------------------------------- linking


def test_an_account_links_from_its_page_and_then_signs_in_through_it(app, client, provider, make_user):
    _uid, email, password = make_user(email="zhou@example.cn")
    provider.person.update(email="other@example.cn", real_name_level=2)
    login(client, email, password)
    before = client.get("/account").get_data(as_text=True)
    assert "关联统一身份认证" in before
    where, page = sign_in(client, start="/account/identity/link", page="/account")
    assert where == "/account" and "已关联统一身份认证" in page and "2 级" in page
    assert identities(app) == [(provider.person["sub"], "zhou@example.cn", 2)]
    assert events(app, "identity_linked")[0]["level"] == 2
    # Signed out, the identity signs into that account.
    fresh = app.test_client()
    where, page = sign_in(fresh)
    assert where == "/account" and "zhou@example.cn" in page
    # It has a password, so it may unlink.
    response = post_form(client, f"/account/identity/{_identity_id(app)}/unlink", {}, page="/account")
    assert response.status_code == 302
    assert "已解除关联统一身份认证" in client.get("/account").get_data(as_text=True)
    assert identities(app) == [] and events(app, "identity_unlinked")


def _identity_id(app) -> int:
    with app.extensions["portal"].sessions() as s:
        return s.scalar(select(LinkedIdentity.id))


def test_an_identity_linked_to_another_account_is_refused(app, provider, make_user):
    sign_in(app.test_client())  # the identity now has its own account
    _uid, email, password = make_user()
    client = app.test_client()
    login(client, email, password)
    where, page = sign_in(client, start="/account/identity/link", page="/account")
    assert where == "/account" and "已关联另一账户" in page
    assert [e for _s, e, _l in identities(app)] == ["sun@example.cn"]


def test_an_account_without_a_password_cannot_unlink(app, client, provider):
    sign_in(client)
    response = post_form(client, f"/account/identity/{_identity_id(app)}/unlink", {}, page="/account")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "还没有密码" in page and len(identities(app)) == 1


def test_another_accounts_identity_cannot_be_unlinked(app, provider, make_user):
    sign_in(app.test_client())
    _uid, email, password = make_user()
    client = app.test_client()
    login(client, email, password)
    response = post_form(client, f"/account/identity/{_identity_id(app)}/unlink", {}, page="/account")
    assert response.status_code == 404 and len(identities(app)) == 1


# ---------------------------------------------------------------------- the real-name level


def _apply(client, purpose):
    today = clock.today()
    return post_form(
        client,
        "/apply?dataset=371502-scj-0002",
        {
            "dataset": "371502-scj-0002",
            "purpose": purpose,
            "scenario": SCENARIO,
            "security": SECURITY,
            "all_fields_371502-scj-0002": "1",
            "period_from": today.isoformat(),
            "period_until": (today + dt.timedelta(days=60)).isoformat(),
        },
    )


def test_commercial_and_research_applications_need_the_level_the_bureau_requires(
    app, portal_data, provider, make_user
):
    _uid, email, password = make_user("company", name="吴经理")
    client = app.test_client()
    login(client, email, password)
    refused = _apply(client, "commercial")
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "须实名认证" in text and "关联统一身份认证" in text and "不低于 3 级" in text and "未关联" in text
    # A consent-route purpose needs no level.
    assert _apply(client, "social").status_code == 302
    # Linked at level 2: still refused, and told the level it has.
    provider.person.update(email=None, email_verified=False, real_name_level=2)
    sign_in(client, start="/account/identity/link", page="/account")
    text = _apply(client, "commercial").get_data(as_text=True)
    assert "不低于 3 级" in text and "本账户：2 级" in text
    # The provider now says level 3: refreshed at the next sign-in through it, then accepted.
    provider.person["real_name_level"] = 3
    sign_in(app.test_client())
    assert _apply(client, "commercial").status_code == 302


def test_a_researcher_below_the_level_is_refused_in_words(app, portal_data, provider, make_user):
    _uid, email, password = make_user("researcher", researcher_verified=True)
    client = app.test_client()
    login(client, email, password)
    text = _apply(client, "research").get_data(as_text=True)
    assert "「科研教育」用途须实名认证" in text


def test_the_level_also_comes_from_acr(app, client, provider):
    del provider.person["real_name_level"]
    provider.person["acr"] = "urn:sd:gov:loa:2"
    sign_in(client)
    assert identities(app)[0][2] == 2


# ---------------------------------------------------------------------- broken callbacks


def _refused_with(client, callback_url, words):
    where, page = back_at_portal(client, callback_url)
    assert where == "/login" and words in page, page
    assert client.get("/account").status_code == 302  # nobody signed in


def test_a_tampered_state_is_refused(app, client, provider):
    back = urlsplit(at_provider(to_provider(client)))
    query = dict(parse_qsl(back.query))
    query["state"] = query["state"][:-2] + "xx"
    _refused_with(client, back.path + "?" + urlencode(query), "不是由本平台发起")
    assert events(app, "login_failed")[-1]["via"] == "oidc"


def test_a_callback_from_another_browser_is_refused(app, client, provider):
    """A code the attacker got for themself, sent to someone else's browser (login CSRF)."""
    back = at_provider(to_provider(app.test_client()))
    _refused_with(client, back, "不是由本平台发起")


def test_refused_consent_is_told(client, provider):
    provider.decision = "deny"
    _refused_with(client, at_provider(to_provider(client)), "取消或拒绝了授权")


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": "not-the-nonce-we-sent"},
        {"exp": int(time.time()) - 600, "iat": int(time.time()) - 900},
        {"iss": "http://127.0.0.1:9/another-issuer"},
        {"aud": "another-client"},
        "bad signature",
    ],
    ids=["wrong nonce", "expired", "another issuer", "another audience", "bad signature"],
)
def test_an_id_token_that_fails_a_check_is_refused(app, client, provider, change):
    if change == "bad signature":
        provider.sign_with = new_key()
    else:
        provider.id_token_changes = change
    _refused_with(client, at_provider(to_provider(client)), "身份凭证未通过校验")
    assert identities(app) == [] and provider.token_requests == 1


def test_a_provider_that_is_down_is_told(client, provider):
    provider.down = True
    response = post_form(client, "/login/oidc", {}, page="/login")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    assert "暂时无法连接统一身份认证平台" in client.get("/login").get_data(as_text=True)
    # Down between the consent and the token exchange: the same message, on the portal's page.
    provider.down = False
    back = at_provider(to_provider(client))
    provider.down = True
    _refused_with(client, back, "暂时无法连接统一身份认证平台")


def test_a_used_code_is_refused(app, client, provider):
    back = at_provider(to_provider(client))
    where, _page = back_at_portal(client, back)
    assert where == "/account"
    other = app.test_client()
    _refused_with(other, back, "不是由本平台发起")


# ---------------------------------------------------------------------- off


def test_off_without_an_issuer_no_button_and_the_routes_404(settings, files_store, make_user):
    from portal.app import create_app

    off = create_app(
        {
            "instance": settings.instance_path,
            "database_url": settings.database_url,
            **files_store,
            "search_backend": settings.search_backend,
            "TESTING": True,
        }
    )
    try:
        client = off.test_client()
        assert "统一身份认证" not in client.get("/login").get_data(as_text=True)
        assert post_form(client, "/login/oidc", {}, page="/login").status_code == 404
        assert client.get("/login/oidc/callback?code=x&state=y").status_code == 404
        _uid, email, password = make_user()
        login(client, email, password)
        assert "统一身份认证" not in client.get("/account").get_data(as_text=True)
        assert post_form(client, "/account/identity/link", {}, page="/account").status_code == 404
    finally:
        off.extensions["portal"].engine.dispose()


def test_a_required_level_without_unified_sign_in_is_a_configuration_error(tmp_path):
    from portal.config import Settings

    with pytest.raises(ValueError, match="PORTAL_OIDC_ISSUER"):
        Settings(instance_path=tmp_path, oidc_required_level=3)
