"""The harvester played by an attacker who controls a catalog: paths out of the catalog's
folder, URLs to the server itself and to other hosts, redirects, the CKAN token, oversized
files, formulas in typed text, odd input that used to answer 500."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from openpyxl import load_workbook

from harvest.entry import FileRef
from harvest.sources import CkanSource, FetchError, FetchPolicy, fetch_file
from tests.catalogs import entry, write_csv
from tests.helpers import dataset, harvest, leaks

SECRET = "root:x:0:0:this-must-never-be-published"


@pytest.fixture
def ctx(app):
    return app.extensions["portal"]


class _Server:
    """A small HTTP server on loopback: answers by path, records each request's headers."""

    def __init__(self, routes: dict):
        self.seen: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.seen.append({"path": self.path, "headers": dict(self.headers)})
                status, headers, body = routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def server():
    servers = []

    def make(routes):
        servers.append(_Server(routes))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_local_paths_stay_inside_the_catalogs_folder(client, ctx, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text(f"x\n{SECRET}\n", encoding="utf-8")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "link.csv").symlink_to(outside)
    (tmp_path / "cat" / "instance_link").symlink_to(ctx.settings.instance_path)
    entries = [
        entry("371502-GJ-0001", "passwd", file="/etc/passwd"),
        entry("371502-GJ-0002", "上级目录", file="../outside.csv"),
        entry("371502-GJ-0003", "绕一圈", file="sub/../../outside.csv"),
        entry("371502-GJ-0004", "符号链接", file="link.csv"),
        entry("371502-GJ-0005", "file 链接", file="file:///etc/passwd"),
        entry("371502-GJ-0006", "实例密钥", file="instance_link/secret_key"),
        entry("371502-GJ-0007", "目录本身", file="."),
    ]
    report = harvest(ctx, tmp_path / "cat", entries)
    for result in report.entries:
        assert result.action == "failed", (result.source_id, result.reason)
        assert "拒绝" in result.reason or "文件夹" in result.reason, result.reason
    assert leaks(client, ctx, [SECRET, "root:x:0:0"]) == {}
    assert not any(p.name.startswith("371502-gj") for p in ctx.storage.root.iterdir())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/login",
        "http://localhost:{port}/",
        "http://169.254.169.254/latest/",
        "ftp://127.0.0.1/x.csv",
        "gopher://127.0.0.1:6379/_INFO",
        "http://user:pass@127.0.0.1:{port}/x.csv",
    ],
)
def test_remote_files_come_only_from_allowed_hosts(client, ctx, tmp_path, live_server, url):
    port = live_server.rsplit(":", 1)[1]
    [result] = harvest(ctx, tmp_path, [entry("371502-GJ-0010", "远程", file=url.format(port=port))]).entries
    assert result.action == "failed" and "拒绝" in result.reason, result.reason
    assert client.get("/dataset/371502-gj-0010").status_code == 404


def test_a_listed_host_may_not_redirect_elsewhere(client, ctx, tmp_path, server, live_server, monkeypatch):
    other = server({"/x.csv": (200, {}, b"a,b\n1,2\n")})
    src = server(
        {
            "/same.csv": (302, {"Location": "/real.csv"}, b""),
            "/real.csv": (200, {}, "站点,泊位\n东昌湖停车场,120\n".encode()),
            "/away.csv": (302, {"Location": other.url("/x.csv")}, b""),
            "/home.csv": (302, {"Location": f"{live_server}/login"}, b""),
        }
    )
    monkeypatch.setenv("PORTAL_HARVEST_ALLOWED_HOSTS", f"127.0.0.1:{src.port}")
    report = harvest(
        ctx,
        tmp_path,
        [
            entry("371502-GJ-0011", "同主机跳转", file=src.url("/same.csv")),
            entry("371502-GJ-0012", "跳到别处", file=src.url("/away.csv")),
            entry("371502-GJ-0013", "跳回门户", file=src.url("/home.csv")),
        ],
    )
    actions = {e.source_id: (e.action, e.reason) for e in report.entries}
    assert actions["371502-GJ-0011"][0] == "created"
    for code in ("371502-GJ-0012", "371502-GJ-0013"):
        assert actions[code][0] == "failed" and "另一个主机" in actions[code][1]
    assert other.seen == []  # the other host was never asked
    for name in ("371502-gj-0012", "371502-gj-0013"):  # the portal's own login page was not published
        assert client.get(f"/dataset/{name}").status_code == 404


def test_the_ckan_token_goes_to_the_ckan_host_only(server, tmp_path):
    ckan = server({"/dataset/r/download/a.csv": (200, {}, b"a\n1\n")})
    elsewhere = server({"/b.csv": (200, {}, b"a\n1\n")})
    source = CkanSource(ckan.url(""), token="secret-token", allowed_hosts=(f"127.0.0.1:{elsewhere.port}",))
    fetch_file(
        FileRef("a.csv", url=ckan.url("/dataset/r/download/a.csv")),
        tmp_path / "a",
        policy=source.fetch_policy,
    )
    fetch_file(FileRef("b.csv", url=elsewhere.url("/b.csv")), tmp_path / "b", policy=source.fetch_policy)
    assert ckan.seen[0]["headers"].get("Authorization") == "secret-token"
    assert "Authorization" not in elsewhere.seen[0]["headers"]
    # a resource on a host nobody listed is not fetched at all
    with pytest.raises(FetchError, match="不在允许采集的名单"):
        fetch_file(
            FileRef("c.csv", url="http://localhost:9/c.csv"), tmp_path / "c", policy=source.fetch_policy
        )


def test_files_over_the_size_limit_are_refused(server, tmp_path):
    big = server({"/big.csv": (200, {}, b"a\n" + b"1\n" * 600_000)})
    policy = FetchPolicy(allowed_hosts=(f"127.0.0.1:{big.port}",), max_bytes=1 << 20)
    with pytest.raises(FetchError, match="MB"):
        fetch_file(FileRef("big.csv", url=big.url("/big.csv")), tmp_path / "big", policy=policy)
    local = tmp_path / "big.csv"
    local.write_bytes(b"a\n" + b"1\n" * 600_000)
    with pytest.raises(FetchError, match="MB"):
        fetch_file(
            FileRef("big.csv", path="big.csv"),
            tmp_path / "copy",
            policy=FetchPolicy(root=tmp_path, max_bytes=1 << 20),
        )


def test_link_local_and_private_addresses_behind_a_domain_suffix_are_refused():
    policy = FetchPolicy(allowed_hosts=(".localhost",))  # any host under a suffix: public addresses only
    with pytest.raises(FetchError, match="内部地址"):
        policy.check_url("http://localhost/x.csv")
    FetchPolicy(allowed_hosts=("localhost",)).check_url(
        "http://localhost/x.csv"
    )  # listed by name: the operator's choice


FORMULAS = [
    '=HYPERLINK("http://evil.example/","点击")',
    "+1+1",
    "-2+3",
    "@SUM(1,2)",
    "\t=1",
    "=cmd|' /C calc'!A0",
]


def test_department_text_never_becomes_a_formula_in_the_open_lists(client, ctx, tmp_path):
    write_csv(tmp_path / "d.csv", ["名称", "公式"], [["甲", "=1+2"]])
    entries = [
        entry(f"371502-SCJ-00{i + 10}", title, file="d.csv", 数据领域="+领域")
        for i, title in enumerate(FORMULAS)
    ]
    entries.append(entry("371502-SCJ-0030", "有条件", "有条件开放", file="d.csv", 开放条件="@SUM(A1:A9)"))
    harvest(ctx, tmp_path, entries)
    text = client.get("/department/dcf-scjgj/lists/unconditional.csv").get_data().decode("utf-8-sig")
    cells = [c for line in text.splitlines() for c in line.split(",")]
    assert not any(c.lstrip('"').startswith(("=", "+", "-", "@", "\t")) for c in cells), text
    assert "'=HYPERLINK" in text and "'+领域" in text
    for cls in ("unconditional", "conditional"):
        wb = load_workbook(io.BytesIO(client.get(f"/department/dcf-scjgj/lists/{cls}.xlsx").get_data()))
        for row in wb.active.iter_rows():
            for cell in row:
                assert cell.data_type != "f", cell.value
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(("=", "+", "@", "-")), cell.value
    # the data itself keeps its text, but as text: the dataset's XLSX has no formula either
    table = dataset(ctx, "371502-scj-0010").distributions[0].tables[0]
    wb = load_workbook(
        io.BytesIO(client.get(f"/dataset/371502-scj-0010/download/{table.id}.xlsx").get_data())
    )
    cell = wb["数据"]["B2"]
    assert cell.value == "=1+2" and cell.data_type == "s"
    # the title on the source sheet is department text too: text, not a formula
    assert all(c.data_type != "f" for row in wb["数据来源"].iter_rows() for c in row)


def test_odd_input_answers_with_a_message_not_a_500(client, ctx, tmp_path, make_user):
    make_user(bureau=True)
    write_csv(tmp_path / "d.csv", ["站点", "泊位"], [["东昌湖停车场", "120"]])
    harvest(ctx, tmp_path, [entry("371502-ZFJ-0009", "停车场\n名录\r\n/../x", file="d.csv")])
    table = dataset(ctx, "371502-zfj-0009").distributions[0].tables[0]
    resp = client.get(f"/dataset/371502-zfj-0009/download/{table.id}.csv")
    assert resp.status_code == 200 and "\n" not in resp.headers["Content-Disposition"]
    assert (
        "/"
        not in resp.headers["Content-Disposition"].split("filename*=")[-1].replace("%2F", "/").split("''")[-1]
    )
    assert client.get("/api/3/action/package_search?facet.field=1").status_code == 409
    assert client.get('/api/3/action/package_search?facet.field={"a":1}').status_code == 409
    ctx.storage.local_path(table.parquet_path).unlink()  # a data file gone behind the portal's back
    ctx.storage.local_path(table.csv_path).unlink()
    page = client.get(
        "/dataset/371502-zfj-0009"
    )  # the record still shows, its preview says why it is missing
    assert page.status_code == 200 and "数据文件暂时不可用" in page.get_data(as_text=True)
    assert "停车场" in page.get_data(as_text=True)
    for url in (
        f"/dataset/371502-zfj-0009/download/{table.id}.csv",
        f"/dataset/371502-zfj-0009/download/{table.id}.excel.csv",
        f"/dataset/371502-zfj-0009/bundle/{table.id}.zip",
        "/api/data/371502-zfj-0009",
    ):
        resp = client.get(url)
        assert resp.status_code == 503, (url, resp.status_code)  # not a 200 cut short (the Excel CSV was)
        message = (
            resp.get_json()["error"]["message"] if url.startswith("/api/") else resp.get_data(as_text=True)
        )
        assert "数据文件暂时不可用" in message
    from sqlalchemy import select

    from portal.models import OutboxMessage

    with ctx.sessions() as s:  # the bureau is told, once, whatever the number of readers
        notes = s.scalars(select(OutboxMessage).where(OutboxMessage.subject.like("数据文件缺失%"))).all()
        assert notes and len({(m.to, m.subject) for m in notes}) == len(notes)


@pytest.mark.parametrize(
    "url",
    [
        "/dataset/x/download/99999999999999999999.csv",
        "/dataset/x/bundle/99999999999999999999.zip",
        "/api/3/action/resource_show?id=99999999999999999999",
        "/api/3/action/resource_show?id=9223372036854775808-csv",
    ],
)
def test_ids_beyond_the_databases_integers_are_not_found(client, url):
    assert client.get(url).status_code == 404


def test_a_file_with_cr_line_endings_gets_a_message(ctx, tmp_path):
    (tmp_path / "d.csv").write_bytes("站点,泊位\r东昌湖,120\r".encode())
    [result] = harvest(ctx, tmp_path, [entry("371502-ZFJ-0020", "停车场", file="d.csv")]).entries
    assert result.action == "failed" and "CR" in result.reason and "内部错误" not in result.reason


@pytest.mark.parametrize("period", ["0000", "0000Q1", "9999Q4", "2026Q5", "99999", "", "２０２６"])
def test_odd_periods_on_the_public_evaluation_are_not_a_500(client, period):
    assert client.get(f"/evaluation?period={period}").status_code == 200
