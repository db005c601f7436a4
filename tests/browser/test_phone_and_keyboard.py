"""The portal on a 390 px phone, in 关怀版, in English and with the keyboard only (issue 17, items
6 and 8), in Debian's chromium."""

from __future__ import annotations

import pytest

from tests.helpers import DESKTOP, PHONE, chinese_interface_text, sideways_overflow

DATASET = "/dataset/371502-scj-0001"
CONDITIONAL = "/dataset/371502-scj-0002"
# Every interactive control a finger has to hit: at least 44 px high on a phone (WCAG 2.5.5).
TOUCH = (
    "header a, header summary, header button, form.search input, form.search button, .filters-button, .facet a, "
    ".sort a, .pages a, .chosen a, main button, main a.button, main select, .download-list a, "
    "main input:not([type=hidden]):not([type=checkbox]):not([type=radio]), .topic, .dept-grid a, .stat-list a"
)


def small_targets(page) -> list[str]:
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height > 0)
        .filter(e => e.getBoundingClientRect().height < 43.5)
        .map(e => `${e.tagName.toLowerCase()}.${e.className} "${e.textContent.trim().slice(0, 20)}" ${e.getBoundingClientRect().height}`)
    """,
        TOUCH,
    )


@pytest.fixture
def curator(make_user):
    return make_user(curator_of="dcf-scjgj")


@pytest.mark.parametrize("care", [False, True], ids=["standard", "care"])
def test_no_page_is_wider_than_a_phone(open_page, live_server, portal_data, curator, care):
    """Home, search, dataset, login, the console and an error page fit a 390 px screen: nothing
    to scroll sideways (wide tables scroll inside their own box), in 关怀版 too."""
    page = open_page(PHONE, care=care)
    for path in (
        "/",
        "/search?q=%E8%8D%AF%E5%93%81",
        "/search",
        DATASET,
        CONDITIONAL,
        "/lists",
        "/department/dcf-scjgj/lists",
        "/login",
        "/register",
        "/dataset/no-such-thing",
        "/tenders",
    ):
        page.goto(live_server + path)
        assert sideways_overflow(page) <= 0, path
        assert page.evaluate("document.body.classList.contains('care')") == care
        assert small_targets(page) == [], path
    console = open_page(PHONE, care=care, user=curator)
    for path in ("/console", "/console/datasets/371502-scj-0004", "/console/applications", "/account"):
        console.goto(live_server + path)
        assert sideways_overflow(console) <= 0, path
        assert small_targets(console) == [], path


def test_the_phone_header_is_compact_and_its_menu_opens(open_page, live_server, portal_data):
    page = open_page(PHONE)
    page.goto(live_server + "/search")
    header = page.locator("header.site").bounding_box()
    assert header["height"] < 844 / 5  # brand, menu button and search box: a fifth of the screen at most
    catalog_link = page.locator("header").get_by_role("link", name="数据目录")
    assert not catalog_link.is_visible()  # behind the menu button
    menu = page.get_by_text("菜单", exact=True)
    assert menu.is_visible()
    menu.click()
    assert catalog_link.is_visible() and page.get_by_role("link", name="关怀版").is_visible()
    assert (
        page.get_by_role("link", name="English").is_visible()
        and page.get_by_role("link", name="登录").is_visible()
    )
    page.keyboard.press("Escape")
    assert not catalog_link.is_visible()
    # On a desktop the same menu is a row, shown without a click.
    desktop = open_page(DESKTOP)
    desktop.goto(live_server + "/search")
    assert desktop.locator("header").get_by_role("link", name="数据目录").is_visible()
    assert not desktop.get_by_text("菜单", exact=True).is_visible()
    assert desktop.locator("header.site").bounding_box()["height"] < 150


HEADER_CLASHES = """() => {
    const range = document.createRange();
    range.selectNodeContents(document.querySelector('.brand-name'));
    const name = range.getBoundingClientRect();
    const lines = [...range.getClientRects()].map(r => Math.round(r.top));
    const clashes = [...document.querySelectorAll('nav.primary a, .tools .tool')]
      .map(a => a.getBoundingClientRect())
      .filter(r => r.width && r.left < name.right && r.right > name.left && r.top < name.bottom && r.bottom > name.top);
    return {clashes: clashes.length, nameLines: new Set(lines).size};
}"""


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("care", [False, True], ids=["standard", "care"])
def test_the_desktop_header_fits_at_every_width(open_page, live_server, portal_data, lang, care):
    """From 960 to 1920 px, in both languages and in 关怀版, the site's name is not drawn over the
    menu, is not broken inside a word, and the header (name, menu, search box) stays a header."""
    for width in (960, 1024, 1366, 1920):
        page = open_page((width, 900), care=care, lang=lang)
        page.goto(live_server + "/search")
        seen = page.evaluate(HEADER_CLASHES)
        assert seen["clashes"] == 0, (width, seen)
        assert seen["nameLines"] == 1, (width, seen)  # the name on one line: never one letter a line
        height = page.locator("header.site").bounding_box()["height"]
        assert height < (280 if care else 200), (width, height)
        assert sideways_overflow(page) <= 0, width
        assert (
            page.locator("header")
            .get_by_role("link", name="Datasets" if lang == "en" else "数据目录")
            .is_visible()
        )


def test_the_phone_shows_results_first_and_the_filters_in_a_drawer(open_page, live_server, portal_data):
    for care in (False, True):
        page = open_page(PHONE, care=care)
        page.goto(live_server + "/search?q=%E8%8D%AF%E5%93%81")  # 药品
        first = page.locator(".hits > li").first.bounding_box()
        assert first["y"] < 844, care  # the first result is on the first screen
        facet = page.locator(".facet a").first
        assert not facet.is_visible()
        page.get_by_text("筛选", exact=True).click()
        assert facet.is_visible()
        facet.click()
        page.wait_for_load_state()
        assert "药品零售企业名录" in page.locator(".hits").inner_text()
        assert page.locator(".chosen a").count() == 1  # the chosen filter shows, and removes with a tap
    desktop = open_page(DESKTOP)
    desktop.goto(live_server + "/search")
    assert desktop.locator(".facet a").first.is_visible()  # a column on the left, no drawer
    results = desktop.locator(".results").bounding_box()
    assert desktop.locator(".facets").bounding_box()["x"] < results["x"]


def test_care_mode_on_a_phone_enlarges_everything_and_stays_on_screen(open_page, live_server, portal_data):
    page = open_page(PHONE)
    page.goto(live_server + "/search")
    standard = {
        "text": page.evaluate("parseFloat(getComputedStyle(document.querySelector('main p')).fontSize)"),
        "box": page.locator("#q").bounding_box()["height"],
        "box_text": page.evaluate("parseFloat(getComputedStyle(document.querySelector('#q')).fontSize)"),
    }
    page.get_by_text("菜单", exact=True).click()
    page.get_by_role("link", name="关怀版").click()
    page.wait_for_load_state()
    assert page.evaluate("document.body.classList.contains('care')")
    assert (
        page.evaluate("parseFloat(getComputedStyle(document.querySelector('main p')).fontSize)")
        >= standard["text"] * 1.2
    )
    assert page.locator("#q").bounding_box()["height"] > standard["box"]  # the search box grows too
    assert (
        page.evaluate("parseFloat(getComputedStyle(document.querySelector('#q')).fontSize)")
        >= standard["box_text"] * 1.2
    )
    for path in ("/", "/search", DATASET):
        page.goto(live_server + path)
        assert sideways_overflow(page) <= 0, path
        box = page.locator("header.site").bounding_box()
        assert box["height"] < 844 / 4, path
    page.get_by_text("菜单", exact=True).click()
    page.get_by_role("link", name="标准版").click()
    page.wait_for_load_state()
    assert not page.evaluate("document.body.classList.contains('care')")


# The search box's English example names catalog words to type, which are Chinese (the catalog is).
EXAMPLES = {"Search data, e.g. 药品 (medicine), 公交 (bus), 学校 (school)"}


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_english_pages_have_no_chinese_interface_text(open_page, live_server, portal_data, make_user, size):
    """In English every word of the interface is English; the catalog's own words (titles,
    departments, domains, the data) stay Chinese and are marked lang="zh-CN"."""
    page = open_page(size, lang="en")
    for path in (
        "/",
        "/search",
        "/search?q=%E8%8D%AF%E5%93%81&open_class=unconditional",
        DATASET,
        CONDITIONAL,
        "/lists",
        "/department/dcf-scjgj/lists",
        "/login",
        "/register",
        "/reset",
        "/dataset/no-such-thing",
        "/tenders",
        "/requests",
        "/showcase",
        "/evaluation",
    ):
        page.goto(live_server + path)
        assert page.locator("html").get_attribute("lang") == "en"
        assert [t for t in chinese_interface_text(page) if t not in EXAMPLES] == [], path
        assert sideways_overflow(page) <= 0, path
    signed_in = open_page(size, lang="en", user=make_user(curator_of="dcf-scjgj"))
    for path in ("/account", "/console", "/console/applications"):
        signed_in.goto(live_server + path)
        assert [t for t in chinese_interface_text(signed_in) if t not in EXAMPLES] == [], path


def _tab_to(page, test: str, limit: int = 120) -> None:
    """Press Tab until the focused element passes `test` (a JS expression over `e`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(e => !!e && ({test}))(document.activeElement)"):
            focus = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
                return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }""")
            assert focus, "the focused element shows no focus ring"
            return
    raise AssertionError(f"Tab never reached {test}")


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_keyboard_only_search_dataset_download(open_page, live_server, portal_data, tmp_path, size):
    page = open_page(size)
    page.goto(live_server + "/")
    page.keyboard.press("Tab")
    assert (
        page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    )  # first stop: skip to content
    _tab_to(page, "e.id === 'q'")
    page.keyboard.type("药品")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=*")
    _tab_to(page, "e.closest('.hit-title') !== null")
    assert "药品零售企业名录" in page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.wait_for_url("**" + DATASET)
    _tab_to(page, "e.classList.contains('download') && e.textContent.includes('Excel')")
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    target = tmp_path / "d.csv"
    info.value.save_as(target)
    assert "聊城市鲁西大药房古楼店" in target.read_text(encoding="utf-8-sig")


def test_keyboard_only_login_and_the_menus(open_page, live_server, portal_data, make_user):
    _, email, password = make_user(curator_of="dcf-scjgj")
    page = open_page(DESKTOP)
    page.goto(live_server + "/")
    _tab_to(page, "e.getAttribute('href') === '/login'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/login")
    _tab_to(page, "e.id === 'email'")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/account")
    # The user menu opens with the keyboard and leads to the console; Escape closes it.
    _tab_to(page, "e.closest('.user-menu') !== null && e.tagName === 'SUMMARY'")
    page.keyboard.press("Enter")
    assert page.get_by_role("link", name="部门控制台").is_visible()
    page.keyboard.press("Escape")
    assert not page.get_by_role("link", name="部门控制台").is_visible()
    page.keyboard.press("Enter")
    _tab_to(page, "e.textContent.trim() === '部门控制台'", limit=10)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console")
    # On a phone the menu button opens the menu with the keyboard too.
    phone = open_page(PHONE)
    phone.goto(live_server + "/")
    _tab_to(phone, "e.classList.contains('menu-button')")
    phone.keyboard.press("Enter")
    assert phone.locator("header").get_by_role("link", name="开放清单").is_visible()
    _tab_to(phone, "e.textContent.trim() === '开放清单'", limit=5)
    phone.keyboard.press("Enter")
    phone.wait_for_url("**/lists")
