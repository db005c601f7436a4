"""A sandbox output as its holder takes it away: output.csv (the checked cells, "*" where one
was suppressed — or the full output once the department released it) and ATTRIBUTION.txt, a
bilingual document like the licensed ZIP's: source, acquisition date (Art. 25), the licence
number and the query."""

from __future__ import annotations

import io
import zipfile

from sqlalchemy.orm import Session

from portal import clock
from portal.audit import record
from portal.exports import csv_bytes, zip_entry, zip_text
from portal.messages import _, bilingual
from portal.models import SandboxQuery, User

from .errors import LicenceError
from .sandbox import in_force, released_in_full

SUPPRESSED = "*"  # a suppressed cell in a downloaded output; ATTRIBUTION.txt says why


def output_zip(
    session: Session, query: SandboxQuery, site_url: str, user: User, ip: str | None = None
) -> tuple[bytes, str]:
    """The output as its holder may take it: the checked cells (suppressed ones as "*"), or
    the full output once the department released it; with the source, the acquisition date
    (Art. 25) and the grant's number."""
    from harvest.formats import attribution

    in_force(user, query.grant)
    if query.user_id != user.id or query.status != "done" or not query.result:
        raise LicenceError(_("该查询没有可下载的结果"))
    full = released_in_full(query)
    body = query.raw_result if full and query.raw_result else query.result
    hidden = set() if full else {(r, c) for r, c, _why in query.result.get("suppressed", [])}
    # exports.csv_bytes: UTF-8 with a BOM, and a cell that would start a formula (a category
    # value or an alias "=…") written as text
    table = csv_bytes(
        body["columns"],
        (
            [SUPPRESSED if (r, c) in hidden else _cell(v) for c, v in enumerate(row)]
            for r, row in enumerate(body["rows"])
        ),
    )
    ds, grant, today = query.dataset, query.grant, clock.today()
    licence_url = f"{site_url.rstrip('/')}/licences/{grant.licence_number}"
    text = "\n".join(
        [
            attribution(ds.department.name, ds.title, today.isoformat()),
            "",
            f"提供部门 / Source department: {ds.department.name}",
            f"数据集 / Dataset: {ds.title} ({ds.name})",
            f"获取日期 / Acquired: {today.isoformat()}",
            f"授权编号 / Licence number: {grant.licence_number}",
            f"授权核验 / Check the licence: {licence_url}",
            f"交付方式 / Delivery: {bilingual(_('数据沙箱'), ' / ')}",
            f"查询编号 / Query: {query.id}",
            "",
            "查询 / Query:",
            query.sql,
            "",
            (
                "本结果经提供部门同意完整发布。 / Released in full by the providing department."
                if full
                else f"分组记录少于 {ds.sandbox_k} 条的不列出；计数和合计含小幅扰动（cell-key 方法：同一组记录总得到同一扰动），"
                f"以防由多次查询相减推出个人数据；“{SUPPRESSED}”表示已抑制的单元格（被一两个主体主导，或与先前结果相减可推出少量记录）。\n"
                f"Groups of fewer than {ds.sandbox_k} records are left out; counts and totals carry a small perturbation "
                "(the cell-key method: the same records always get the same one) so that subtracting outputs reveals "
                f'no person; "{SUPPRESSED}" marks a suppressed cell (dominated by one or two records, or a few records '
                "away from an earlier output)."
            ),
            "",
            "利用本结果形成的产品须注明数据来源和获取日期；不得向第三方提供授权数据。",
            "Products state the source and date; the licensed data is not passed to third parties.",
            "",
        ]
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zip_entry("output.csv"), table)
        zip_text(zf, "ATTRIBUTION.txt", text)
    record(
        session,
        "sandbox_output_download",
        actor=user,
        target=f"grant:{grant.id}",
        ip=ip,
        query=query.id,
        full=full,
    )
    return buf.getvalue(), f"{ds.name}-{grant.licence_number}-query-{query.id}.zip"


def _cell(value: object) -> object:
    return "" if value is None else value
