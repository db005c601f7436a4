"""The public statistics (/stats, a department's, a dataset's) and the dataset page's API
section: the numbers the counters hold, the CSV the same as the page, nothing not open shown,
the try-it form answering — on the harvested catalog, on the real database."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from sqlalchemy import select

from portal import clock
from portal.models import Dataset, Department, ErrorReport, User
from tests.helpers import table_of

OPEN = "371502-scj-0001"  # unconditional, 3 rows
CONDITIONAL = "371502-scj-0002"
NOT_OPEN = "371502-scj-0003"
HELD = "371502-scj-0004"
WITHDRAWN = "371502-jty-0002"
OTHER_OPEN = "371502-jty-0001"


def ids(ctx) -> dict[str, int]:
    with ctx.sessions() as s:
        return {name: i for i, name in s.execute(select(Dataset.id, Dataset.name))}


def titles_of(ctx, *names) -> list[str]:
    with ctx.sessions() as s:
        return list(s.scalars(select(Dataset.title).where(Dataset.name.in_(names))))


def kpis(html: str) -> list[int]:
    """The four figures at the top: downloads and API calls in 30 days, then in a year."""
    block = html[html.index('class="kpis stats-kpis"') :]
    return [int(n) for n in re.findall(r"<strong>(\d+)</strong>", block)[:4]]


def daily_rows(html: str) -> list[tuple[str, int, int]]:
    table = html[html.index('class="stats-daily"') :]
    table = table[: table.index("</table>")]
    return [
        (day, int(d), int(c))
        for day, d, c in re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>(\d+)</td><td>(\d+)</td></tr>", table)
    ]


@pytest.fixture
def counted(client, portal_data):
    """Two downloads and three data API calls of the open dataset, a metadata call of the
    conditional one; and counts that must never be shown (licensed rows, held, withdrawn, not open)."""
    t = table_of(portal_data, OPEN)
    for _ in range(2):
        assert client.get(f"/dataset/{OPEN}/download/{t.id}.csv").status_code == 200
    for _ in range(3):
        assert client.get(f"/api/data/{OPEN}?limit=1").status_code == 200
    assert client.get(f"/api/3/action/package_show?id={CONDITIONAL}").status_code == 200
    known = ids(portal_data)
    counters = portal_data.counters
    counters.add("api_data", known[CONDITIONAL], n=50)  # a grant holder's rows: not public
    for name in (NOT_OPEN, HELD, WITHDRAWN):
        counters.add("download", known[name], n=100)
        counters.add("api_meta", known[name], n=100)
    return known


def test_the_portal_page_shows_what_the_counters_hold_before_and_after_the_flush(
    client, portal_data, counted
):
    before = kpis(client.get("/stats").get_data(as_text=True))
    assert before == [2, 4, 2, 4]  # 3 data calls + 1 metadata call; nothing of the rest
    portal_data.counters.flush()
    page = client.get("/stats").get_data(as_text=True)
    assert kpis(page) == before
    today = daily_rows(page)[-1]
    assert today == (clock.today().isoformat(), 2, 4)
    month = clock.today().strftime("%Y-%m")
    assert f"<tr><td>{month}</td><td>2</td><td>4</td></tr>" in page


def test_the_csv_is_the_page_in_numbers_with_a_bom_and_beijing_dates(client, portal_data, counted):
    portal_data.counters.flush()
    page = client.get("/stats").get_data(as_text=True)
    answer = client.get("/stats.csv")
    assert answer.mimetype == "text/csv" and "attachment" in answer.headers["Content-Disposition"]
    body = answer.get_data()
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["日期", "下载次数", "API 调用次数"]
    assert len(rows) == 1 + 365 and rows[-1][0] == clock.today().isoformat()
    assert [(d, int(a), int(b)) for d, a, b in rows[-30:]] == daily_rows(page)
    english = client.get("/stats.csv?lang=en").get_data().decode("utf-8-sig")
    assert english.splitlines()[0] == "Date,Downloads,API calls"


def test_a_departments_page_counts_its_open_datasets_only(client, portal_data, counted):
    portal_data.counters.flush()
    scj = client.get("/stats/department/dcf-scjgj").get_data(as_text=True)
    assert kpis(scj) == [2, 4, 2, 4]
    assert "药品零售企业名录" in scj and "企业信用风险分类结果" in scj
    datasets = scj[scj.index('class="stats-datasets"') :]
    conditional_row = datasets[datasets.index("企业信用风险分类结果") :]
    assert conditional_row.split("</tr>")[0].endswith(
        "<td>—</td><td>1</td>"
    )  # no downloads shown, 1 metadata call
    jty = client.get("/stats/department/dcf-jtysj").get_data(as_text=True)
    assert kpis(jty) == [0, 0, 0, 0]
    csv_text = client.get("/stats/department/dcf-scjgj.csv").get_data().decode("utf-8-sig")
    assert csv_text.splitlines()[-1] == f"{clock.today().isoformat()},2,4"
    assert client.get("/stats/department/no-such").status_code == 404


def test_a_datasets_page_and_nothing_not_open_anywhere(client, portal_data, counted):
    portal_data.counters.flush()
    assert kpis(client.get(f"/dataset/{OPEN}/stats").get_data(as_text=True)) == [2, 3, 2, 3]
    conditional = client.get(f"/dataset/{CONDITIONAL}/stats").get_data(as_text=True)
    assert kpis(conditional) == [0, 1, 0, 1]  # its metadata call; the licensed rows are not shown
    for name in (NOT_OPEN, HELD, WITHDRAWN):
        assert client.get(f"/dataset/{name}/stats").status_code == 404
        assert client.get(f"/dataset/{name}/stats.csv").status_code == 404
    secret_titles = titles_of(portal_data, NOT_OPEN, HELD, WITHDRAWN)
    assert len(secret_titles) == 3
    for url in ("/stats", "/stats/department/dcf-scjgj", "/stats/department/dcf-jtysj", "/stats?lang=en"):
        html = client.get(url).get_data(as_text=True)
        for title in secret_titles:
            assert title not in html, (url, title)
        for name in (NOT_OPEN, HELD, WITHDRAWN):
            assert name not in html, (url, name)


def test_datasets_by_class_this_month_are_the_open_ones(client, portal_data):
    page = client.get("/stats").get_data(as_text=True)
    with portal_data.sessions() as s:
        public = [ds for ds in s.scalars(select(Dataset)) if ds.is_public]
    unconditional = sum(1 for ds in public if ds.open_class == "unconditional")
    conditional = sum(1 for ds in public if ds.open_class == "conditional")
    assert (unconditional, conditional) == (2, 1)
    month = clock.today().strftime("%Y-%m")
    classes = page[page.index('id="classes"') :]
    assert f"<tr><td>{month}</td><td>{unconditional}</td><td>{conditional}</td></tr>" in classes
    assert "<svg" in classes


def test_deadlines_kept_and_the_department_table(client, portal_data, make_user):
    reporter_id, _e, _p = make_user()
    today = clock.today()
    known = ids(portal_data)
    with portal_data.sessions() as s:
        answered = clock.start_of_day(today - dt.timedelta(days=3))
        for deadline, at in (
            (today - dt.timedelta(days=2), answered),  # in time
            (today - dt.timedelta(days=5), answered),  # late
            (today - dt.timedelta(days=1), None),  # past its deadline, unanswered: late
            (today + dt.timedelta(days=5), None),  # not due yet: not judged
        ):
            s.add(
                ErrorReport(
                    dataset_id=known[OPEN],
                    reporter_id=reporter_id,
                    text="有误",
                    deadline=deadline,
                    answered_at=at,
                )
            )
        s.commit()
        assert s.get(User, reporter_id) is not None
        scj = s.scalar(select(Department.name).where(Department.code == "dcf-scjgj"))
    page = client.get("/stats").get_data(as_text=True)
    kept = page[page.index('class="stats-kept"') :]
    assert "<tr><td>数据纠错</td><td>1</td><td>2</td><td>33%</td></tr>" in kept
    departments = page[page.index('id="departments"') :]
    assert f'<a href="/stats/department/dcf-scjgj">{scj}</a>' in departments


def test_the_dataset_page_lists_its_calls_and_the_try_it_form_answers(client, portal_data):
    page = client.get(f"/dataset/{OPEN}").get_data(as_text=True)
    section = page[page.index('id="api-calls"') :]
    assert f"/api/data/{OPEN}?limit=10" in section
    assert f"/api/3/action/package_show?id={OPEN}" in section
    example = re.search(r"/api/data/" + OPEN + r"\?eq\[([^\]]+)\]=([^&]+)&amp;limit=10", section)
    assert example, section[:2000]
    column, value = example.group(1), example.group(2)
    assert value != "…"  # a real value of a real column
    tried = client.get(
        f"/dataset/{OPEN}", query_string={"api_call": "rows", "api_col": column, "api_val": value}
    )
    html = tried.get_data(as_text=True)
    answer = html[html.index('class="api-answer"') :]
    assert '<strong class="api-status">200</strong>' in answer
    assert f"/api/data/{OPEN}?limit=5&amp;eq[{column}]={value}" in answer
    assert value in answer and "&#34;records&#34;" in answer
    bad = client.get(
        f"/dataset/{OPEN}", query_string={"api_call": "rows", "api_col": "没有这一列", "api_val": "x"}
    )
    assert '<strong class="api-status">400</strong>' in bad.get_data(as_text=True)
    meta = client.get(f"/dataset/{OPEN}", query_string={"api_call": "package_show"}).get_data(as_text=True)
    assert "&#34;success&#34;: true" in meta


def test_conditional_data_shows_the_call_and_says_a_grant_is_needed(client, portal_data):
    page = client.get(f"/dataset/{CONDITIONAL}", query_string={"api_call": "rows"}).get_data(as_text=True)
    section = page[page.index('id="api-calls"') :]
    assert f"/api/data/{CONDITIONAL}?limit=10" in section
    assert "须先获得授权" in section and "API 令牌" in section
    assert 'class="api-answer"' not in section and 'name="api_call"' not in section
