"""A refusal as a PDF (不予提供公共数据决定书): the same words as the printable page, set with
reportlab's built-in Chinese font (STSong-Light, an Adobe CID font: nothing to install)."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from portal import clock
from portal.messages import source
from portal.models import Application

FONT = "STSong-Light"


def decision_pdf(app: Application) -> bytes:
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    body = ParagraphStyle("body", fontName=FONT, fontSize=12, leading=20, wordWrap="CJK")
    title = ParagraphStyle("title", parent=body, fontSize=18, leading=28, alignment=TA_CENTER)
    right = ParagraphStyle("right", parent=body, alignment=TA_RIGHT)
    who = app.applicant.company_name or app.applicant.institution or app.applicant.name
    sensitive = any(i.dataset.sensitive for i in app.items)
    decided = clock.local(app.decided_at).strftime("%Y年%m月%d日") if app.decided_at else ""
    lines = [
        Paragraph(escape(app.department.name), title),
        Paragraph("不予提供公共数据决定书", title),
        Spacer(1, 6 * mm),
        Paragraph(f"申请编号：{escape(app.number)}", body),
        Paragraph(f"{escape(who)}：", body),
        Paragraph(
            f"你（单位）于 {clock.local(app.submitted_at).date()} 通过东昌府区公共数据开放平台申请使用以下有条件开放数据：",
            body,
        ),
        *[
            Paragraph(
                f"· {escape(i.dataset.title)}（{escape(i.dataset.resource_code or i.dataset.name)}）"
                + ("——涉及国家秘密、商业秘密或个人隐私" if i.dataset.sensitive else ""),
                body,
            )
            for i in app.items
        ],
        Paragraph(f"用途：{escape(source(app.purpose_label))}；使用场景：{escape(app.scenario)}", body),
        Paragraph("经审查，本部门决定不予提供。理由如下：", body),
        Paragraph(escape(app.decision_note or "").replace("\n", "<br/>"), body),
        Paragraph(
            "依据：《东昌府区政务数据资源管理暂行办法》第二十五条（不同意的，应当说明理由）"
            + (
                "；参照《江苏省公共数据管理办法》第十八条（涉及国家秘密、商业秘密、个人隐私的，书面答复）"
                if sensitive
                else ""
            )
            + "。",
            body,
        ),
        Paragraph(
            "如对本决定有异议，可在收到本决定之日起向东昌府区大数据局反映，或依法申请行政复议、提起行政诉讼。",
            body,
        ),
        Spacer(1, 12 * mm),
        Paragraph(escape(app.department.name), right),
        Paragraph(decided, right),
    ]
    buf = io.BytesIO()
    SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=25 * mm,
        bottomMargin=25 * mm,
        title=f"不予提供公共数据决定书 {app.number}",
        author=app.department.name,
    ).build(lines)
    return buf.getvalue()
