"""Unified sign-in in Debian's chromium (issue 20, item 8): the login page's button, the loopback
provider's consent page (tests/oidc_provider.py), and the portal showing the person signed in;
linking from the account page. axe-core checks both sections; a 390 px phone scrolls no page
sideways. With PORTAL_SCREENSHOTS=1 the pages are saved to docs/screenshots/."""

from __future__ import annotations

import pytest

from tests.helpers import DESKTOP, PHONE, shot, sideways_overflow
from tests.oidc_provider import portal_config, running_provider

AXE_RULES = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
    "resultTypes": ["violations"],
}


@pytest.fixture
def provider():
    with running_provider() as p:
        p.decision = "consent"  # the provider shows its consent page
        yield p


@pytest.fixture
def app(settings, files_store, provider):
    from portal.app import create_app

    app = create_app(portal_config(settings, files_store, provider))
    yield app
    app.extensions["portal"].engine.dispose()


def serious_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=AXE_RULES).response
    return [
        f"{v['impact']}: {v['id']} at {', '.join(n['target'][0] for n in v['nodes'][:3])}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _suffix(size, lang) -> str:
    return f"{'phone' if size == PHONE else 'desktop'}-{lang or 'zh'}"


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("lang", [None, "en"], ids=["zh", "en"])
def test_a_person_signs_in_through_the_provider_and_is_signed_in(
    open_page, live_server, provider, size, lang
):
    page = open_page(size, lang=lang)
    page.goto(live_server + "/login")
    button = page.get_by_role(
        "button", name="使用统一身份认证登录" if lang is None else "Sign in with unified identity"
    )
    assert button.is_visible()
    assert serious_violations(page) == [] and sideways_overflow(page) <= 0
    shot(page, f"oidc-login-{_suffix(size, lang)}")
    button.click()
    page.wait_for_url(provider.issuer + "/authorize**")
    assert "孙实名" in page.inner_text("main")
    page.get_by_role("button", name="同意并登录").click()
    page.wait_for_url("**/account")
    text = page.inner_text("main")
    assert "孙实名" in text and "sun@example.cn" in text
    assert ("3 级" in text) if lang is None else ("Level 3" in text)
    # The header shows the person signed in (their name, the menu with 退出 / Log out).
    assert page.locator("header .user-name").text_content() == "孙实名"
    assert page.locator("header .user-menu form[action='/logout']").count() == 1
    assert serious_violations(page) == [] and sideways_overflow(page) <= 0


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("lang", [None, "en"], ids=["zh", "en"])
def test_an_account_links_its_identity_from_the_account_page(
    open_page, live_server, provider, make_user, size, lang
):
    provider.person.update(email=None, email_verified=False, real_name_level=2)
    user = make_user(name="周用户")
    page = open_page(size, lang=lang)
    page.goto(live_server + "/login")
    page.locator("#email").fill(user[1])
    page.locator("#password").fill(user[2])
    page.locator("form.form button[type=submit]").click()
    page.wait_for_url("**/account")
    section = page.locator("section.unified-signin")
    section.scroll_into_view_if_needed()
    assert serious_violations(page) == [] and sideways_overflow(page) <= 0
    shot(page, f"oidc-account-unlinked-{_suffix(size, lang)}")
    section.get_by_role("button").click()
    page.wait_for_url(provider.issuer + "/authorize**")
    page.get_by_role("button", name="同意并登录").click()
    page.wait_for_url("**/account")
    text = page.locator("section.unified-signin").inner_text()
    assert ("2 级" in text) if lang is None else ("Level 2" in text)
    assert serious_violations(page) == [] and sideways_overflow(page) <= 0
    page.locator("section.unified-signin").scroll_into_view_if_needed()
    shot(page, f"oidc-account-linked-{_suffix(size, lang)}")
