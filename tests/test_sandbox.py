"""The data sandbox from its users' side (issue 21, items 1–3): a curator approves an
application for sandbox delivery; the holder can no longer take rows by any path, runs
aggregate SQL on the web and through the API, sees small cells suppressed, downloads the
checked output with its source, date and licence number, asks for a release; the providing
department sees every query with its full result and decides the release with reasons.
The engine's own attack suite is tests/test_sandbox_attacks.py."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, Grant, OutboxMessage, SandboxQuery, User
from tests.helpers import SANDBOX_DATASET, login, make_sandbox_world, sandbox_rows

NAME = SANDBOX_DATASET


@pytest.fixture
def sandbox_world(portal_data, tmp_path, make_user):
    return make_sandbox_world(portal_data, tmp_path, make_user)


def _run(client, world, sql: str) -> str:
    """Post a query from the editor page (as its form does) and return the query page."""
    page = client.get(f"/sandbox/{world['grant_id']}").get_data(as_text=True)
    table = re.search(r'name="table" value="(\d+)"', page).group(1)
    answer = client.post(
        f"/sandbox/{world['grant_id']}",
        data={"sql": sql, "table": table, "csrf_token": _csrf(page)},
        follow_redirects=True,
    )
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def token_for(portal_data, user_id: int) -> str:
    from portal import accounts

    with portal_data.sessions() as s:
        _row, token = accounts.create_token(s, s.get(User, user_id), "沙箱脚本", 30)
        s.commit()
        return token


def _result_rows(page: str) -> list[list[str]]:
    """The output table's body as the holder reads it: a suppressed cell reads "*"."""
    table = page.split('class="sandbox-result"', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = re.findall(r"<td([^>]*)>(.*?)</td>", row, re.S)
        rows.append(
            ["*" if "suppressed" in attrs else re.sub(r"<[^>]+>", "", v).strip() for attrs, v in cells]
        )
    return rows


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_a_sandbox_grant_lets_no_row_leave(sandbox_world, client, portal_data):
    _, email, password = sandbox_world["applicant"]
    login(client, email, password)
    grants_page = client.get("/grants").get_data(as_text=True)
    assert "进入数据沙箱" in grants_page and "/download/" not in grants_page  # no licensed ZIP link
    token = token_for(portal_data, sandbox_world["applicant"][0])
    refused = client.get(f"/api/data/{NAME}", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403 and "数据沙箱" in refused.get_json()["error"]["message"]
    # The dataset page gives the holder no rows either (previews are for file grants only).
    page = client.get(f"/dataset/{NAME}").get_data(as_text=True)
    real_ids = {r[1] for r in sandbox_rows()}
    assert not any(i in page for i in real_ids)
    with portal_data.sessions() as s:
        grant = s.get(Grant, sandbox_world["grant_id"])
        assert grant.delivery == "sandbox" and "数据沙箱" in grant.agreement.text


def test_a_grouped_count_is_released_with_small_cells_suppressed(sandbox_world, client, portal_data):
    _, email, password = sandbox_world["applicant"]
    login(client, email, password)
    page = _run(
        client,
        sandbox_world,
        "SELECT 所属街道, COUNT(*) AS 人数 FROM data GROUP BY 所属街道 ORDER BY 人数 DESC",
    )
    assert "已完成" in page
    rows = _result_rows(page)
    shown = {r[0]: int(r[1]) for r in rows}
    # 广平乡's 3 records: the group is left out, and no word says whether one was; the others'
    # counts carry the cell-key perturbation (at most ±3), the same on every run.
    assert set(shown) == {"古楼街道", "柳园街道", "新区街道"}
    assert all(abs(shown[k] - n) <= 3 for k, n in {"古楼街道": 120, "柳园街道": 90, "新区街道": 60}.items())
    assert "记录少于 10 条的分组不显示" in page
    again = _result_rows(
        _run(client, sandbox_world, "SELECT 所属街道, COUNT(*) AS 人数 FROM data GROUP BY 所属街道")
    )
    assert {r[0]: int(r[1]) for r in again} == shown  # averaging reruns removes nothing

    link = re.search(r'href="(/sandbox/queries/\d+/output\.zip)"', page).group(1)
    download = client.get(link)
    assert download.status_code == 200 and download.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.data)) as zf:
        rows = list(csv.reader(io.StringIO(zf.read("output.csv").decode("utf-8-sig"))))
        attribution = zf.read("ATTRIBUTION.txt").decode()
    assert rows[0] == ["所属街道", "人数"] and {r[0]: int(r[1]) for r in rows[1:]} == shown
    assert sandbox_world["licence"] in attribution and "东昌府区民政局" in attribution
    assert "获取日期" in attribution and "分组记录少于 10 条的不列出" in attribution

    with portal_data.sessions() as s:
        actions = set(s.scalars(select(AuditEvent.action)))
        query = s.scalars(select(SandboxQuery).order_by(SandboxQuery.id)).first()
        # the department and the bureau keep the full, unperturbed result
        assert ["广平乡", 3] in query.raw_result["rows"] and ["古楼街道", 120] in query.raw_result["rows"]
    assert {"sandbox_query", "sandbox_result", "sandbox_output_download"} <= actions


def test_row_level_output_is_refused_with_words(sandbox_world, client):
    _, email, password = sandbox_world["applicant"]
    login(client, email, password)
    page = _run(client, sandbox_world, "SELECT 姓名, 身份证号 FROM data")
    assert "未通过检查" in page and 'role="alert"' in page
    assert not any(r[1] in page for r in sandbox_rows())


def test_a_release_is_decided_by_the_department_with_reasons(sandbox_world, client, portal_data, make_user):
    _, email, password = sandbox_world["applicant"]
    login(client, email, password)
    page = _run(client, sandbox_world, "SELECT 所属街道, COUNT(*) AS 人数 FROM data GROUP BY 所属街道")
    query_url = re.search(r'action="(/sandbox/queries/(\d+)/release)"', page)
    query_id = query_url.group(2)
    client.post(
        query_url.group(1),
        data={"reason": "需要广平乡的人数以核对全区救助覆盖总数", "csrf_token": _csrf(page)},
    )
    client.get("/logout")

    # Another department's curator does not see it; the providing department does.
    other = make_user(curator_of="dcf-scjgj")
    login(client, other[1], other[2])
    assert client.get(f"/console/sandbox/queries/{query_id}").status_code == 404
    client.get("/logout")
    _, c_email, c_password = sandbox_world["curator"]
    login(client, c_email, c_password)
    overview = client.get("/console/sandbox").get_data(as_text=True)
    assert f"/console/sandbox/queries/{query_id}" in overview
    detail = client.get(f"/console/sandbox/queries/{query_id}").get_data(as_text=True)
    assert "广平乡" in detail and "<td>3</td>" in detail  # the full result, for the department
    release_form = re.search(r'action="(/console/sandbox/releases/\d+)"', detail).group(1)
    no_reason = client.post(
        release_form, data={"decision": "approve", "note": "", "csrf_token": _csrf(detail)}
    )
    assert no_reason.status_code == 302  # refused: a decision needs reasons
    detail = client.get(f"/console/sandbox/queries/{query_id}").get_data(as_text=True)
    client.post(
        release_form,
        data={
            "decision": "approve",
            "note": "乡镇人数为统计汇总，经审核不涉及个人识别",
            "csrf_token": _csrf(detail),
        },
    )
    client.get("/logout")

    login(client, email, password)
    with zipfile.ZipFile(io.BytesIO(client.get(f"/sandbox/queries/{query_id}/output.zip").data)) as zf:
        rows = list(csv.reader(io.StringIO(zf.read("output.csv").decode("utf-8-sig"))))
        assert "完整发布" in zf.read("ATTRIBUTION.txt").decode()
    assert ["广平乡", "3"] in rows
    with portal_data.sessions() as s:
        decided = s.scalars(select(AuditEvent).where(AuditEvent.action == "sandbox_release_decided")).one()
        assert decided.detail["decision"] == "approved"
        # the department was told of the request, the researcher of the decision and its reasons
        told = {(m.to, m.subject.split(" · ")[0]) for m in s.scalars(select(OutboxMessage))}
        assert (c_email, "数据沙箱结果发布申请待审核") in told and (email, "数据沙箱结果已同意发布") in told


def test_the_api_runs_a_query_with_the_holders_token(sandbox_world, client, portal_data, make_user):
    token = token_for(portal_data, sandbox_world["applicant"][0])
    auth = {"Authorization": f"Bearer {token}"}
    url = f"/api/sandbox/{sandbox_world['grant_id']}/queries"
    answer = client.post(
        url,
        json={"sql": "SELECT 所属街道, AVG(月补贴金额) AS 平均 FROM data GROUP BY 所属街道"},
        headers=auth,
    )
    assert answer.status_code == 202
    body = client.get(answer.headers["Location"], headers=auth).get_json()
    assert body["status"] == "done" and body["licence_number"] == sandbox_world["licence"]
    streets = {r[0]: r[1] for r in body["result"]["rows"]}
    assert set(streets) == {"古楼街道", "柳园街道", "新区街道"}  # 广平乡 left out
    assert all(600 <= v <= 2400 for v in streets.values())
    # refusals in words, in JSON
    star = client.post(url, json={"sql": "SELECT * FROM data"}, headers=auth)
    star_body = client.get(star.headers["Location"], headers=auth).get_json()
    assert star_body["status"] == "refused" and star_body["message"]
    # Another person's token does not reach this grant or its queries.
    other = token_for(portal_data, make_user("company")[0])
    assert (
        client.post(
            url, json={"sql": "SELECT COUNT(*) FROM data"}, headers={"Authorization": f"Bearer {other}"}
        ).status_code
        == 404
    )
    assert (
        client.get(answer.headers["Location"], headers={"Authorization": f"Bearer {other}"}).status_code
        == 404
    )
    # A browser session cannot post to the API (no CSRF token there): the web form is the way.
    _, email, password = sandbox_world["applicant"]
    login(client, email, password)
    assert client.post(url, json={"sql": "SELECT COUNT(*) FROM data"}).status_code == 401


def test_a_revoked_grant_closes_the_sandbox(sandbox_world, client, portal_data):
    from licenses import grants

    with portal_data.sessions() as s:
        curator = s.get(User, sandbox_world["curator"][0])
        grants.revoke(
            s, curator, s.get(Grant, sandbox_world["grant_id"]), "使用方违反协议约定，向第三方提供数据"
        )
        s.commit()
    _, email, password = sandbox_world["applicant"]
    login(client, email, password)
    answer = client.get(f"/sandbox/{sandbox_world['grant_id']}", follow_redirects=True)
    assert "授权已撤销" in answer.get_data(as_text=True)


def test_a_sandbox_only_dataset_is_never_granted_as_a_file(portal_data, make_user):
    from licenses import applications as apps
    from licenses.errors import LicenceError
    from licenses.sandbox import set_sandbox
    from tests.helpers import conditional, submit

    applicant, curator_ids = make_user("company"), make_user(curator_of="dcf-scjgj")
    with portal_data.sessions() as s:
        curator = s.get(User, curator_ids[0])
        ds = conditional(s)
        with pytest.raises(LicenceError, match="k 须在"):
            set_sandbox(s, curator, ds, only=True, k=2)
        set_sandbox(s, curator, ds, only=True, k=10)
        s.commit()
        app = submit(s, s.get(User, applicant[0]))
        today = dt.date.today()
        with pytest.raises(LicenceError, match="仅在数据沙箱中使用"):
            apps.approve(
                s, curator, app, app.version, fields={}, row_filters={}, valid_from=today,
                valid_until=today + dt.timedelta(days=30), delivery="file",
            )  # fmt: skip


def test_the_editors_example_query_passes_the_checks(sandbox_world, client):
    """The query the editor offers first is one the checks let through, before and after the
    table's copy says which columns identify people (a first try should not be refused)."""
    import html

    _, email, password = sandbox_world["applicant"]
    login(client, email, password)
    for _round in range(2):
        page = client.get(f"/sandbox/{sandbox_world['grant_id']}").get_data(as_text=True)
        example = html.unescape(re.search(r'<textarea id="sql"[^>]*>([^<]*)</textarea>', page).group(1))
        answer = _run(client, sandbox_world, example)
        assert "已完成" in answer, example
    assert "GROUP BY 所属街道" in example  # once the copy is made: a count by a column that may be grouped


def test_an_output_cell_that_would_be_a_formula_is_written_as_text(sandbox_world, client):
    """output.csv is opened in Excel: an alias (or a category) starting with "=" is text there."""
    _, email, password = sandbox_world["applicant"]
    login(client, email, password)
    page = _run(client, sandbox_world, 'SELECT COUNT(*) AS "=HYPERLINK(""http://x"")" FROM data')
    assert "已完成" in page
    link = re.search(r'href="(/sandbox/queries/\d+/output\.zip)"', page).group(1)
    with zipfile.ZipFile(io.BytesIO(client.get(link).data)) as zf:
        rows = list(csv.reader(io.StringIO(zf.read("output.csv").decode("utf-8-sig"))))
    assert rows[0] == ['\'=HYPERLINK("http://x")']
