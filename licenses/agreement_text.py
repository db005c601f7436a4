"""The data use agreement, from a versioned template (Chinese, with English).

A new wording is a new TEMPLATE_VERSION; accepted agreements keep the text they were
accepted with (models.Agreement), so changing this file never changes a signed agreement.
"""

from __future__ import annotations

from portal.messages import bilingual
from portal.models import Application

TEMPLATE_VERSION = "2026-11-v2"  # v2: consent terms forbid commercial exploitation

ROUTE_TERMS = {
    "consent": (
        "经提供部门同意，仅限本协议载明的创新发展、城市治理或社会服务用途和范围使用，不得用于商业开发或经营性"
        "利用（商业开发须经公开招标等竞争性方式取得授权）。",
        "Consented by the providing department; for the innovation, urban-governance or social-service purpose "
        "and scope stated here only; no commercial development or exploitation (that needs a competitive "
        "award).",
    ),
    "research": (
        "仅限于科研教育等公益性活动，不得用于任何商业用途。",
        "For research and education public-interest activity only; no commercial use of any kind.",
    ),
    "tender": (
        "经公开招标等竞争性方式确定，按中标范围和期限进行商业开发。",
        "Awarded by public tender or another competitive method; commercial use within the awarded scope and term.",
    ),
}


def render_agreement(app: Application, site_url: str) -> str:
    assert app.approved_from is not None and app.approved_until is not None, (
        "an agreement is for an approved term"
    )
    applicant = app.applicant
    party = applicant.company_name or applicant.institution or applicant.name
    items = []
    for item in app.items:
        fields = "全部字段 / all fields" if item.fields_approved is None else "、".join(item.fields_approved)
        rows = (
            ""
            if not item.row_filter
            else "；仅限 / rows only where "
            + "；".join(f"{k} ∈ {{{'、'.join(map(str, v))}}}" for k, v in item.row_filter.items())
        )
        items.append(
            f"  - {item.dataset.title}（{item.dataset.resource_code or item.dataset.name}）：{fields}{rows}"
        )
    # A dataset its department made sandbox-only is delivered so whatever was chosen at approval
    # (licenses/grants.py accept): the agreement says what the grant will be.
    if app.delivery == "sandbox" or any(item.dataset.sandbox_only for item in app.items):
        items += [
            "  交付方式：数据沙箱——数据不出域，乙方在平台沙箱中查询，仅通过统计披露控制检查或经甲方同意发布的汇总结果可以导出。",
            "  Delivery: data sandbox — the data never leaves; the user queries it in the platform's sandbox and only "
            "aggregate outputs that pass disclosure control or that the provider agrees to release can be exported.",
        ]
    zh_terms, en_terms = ROUTE_TERMS[app.route]
    return "\n".join(
        [
            "东昌府区有条件开放数据使用协议 / Dongchangfu District Conditional Data Use Agreement",
            f"模板版本 / Template version: {TEMPLATE_VERSION}    申请编号 / Application: {app.number}",
            "",
            f"甲方（数据提供方） / Provider: {app.department.name}",
            f"乙方（数据使用方） / User: {party}（{applicant.email}）",
            "平台 / Platform: 东昌府区公共数据开放平台（东昌府区大数据局）",
            "",
            "一、数据范围 / Datasets and fields",
            *items,
            "",
            f"二、用途 / Purpose: {bilingual(app.purpose_label, ' / ')} — {app.scenario}",
            f"    {zh_terms}",
            f"    {en_terms}",
            f"三、期限 / Term: {app.approved_from.isoformat()} 至 / to {app.approved_until.isoformat()}",
            f"四、安全保护义务 / Security duties: 乙方承诺采取以下措施并依法保护数据安全 / the user will keep: {app.security_measures}",
            "    发生数据泄露等安全事件的，应立即告知甲方和东昌府区大数据局。 / Report any breach at once to the provider and the bureau.",
            "五、不得向第三方提供 / No third-party transfer: 乙方不得将数据提供、转让或出售给任何第三方。",
            "    The user shall not provide, transfer or sell the data to any third party.",
            "六、署名义务 / Attribution: 利用数据形成的产品须注明数据来源和获取日期（《东昌府区政务数据资源管理暂行办法》第二十五条）。",
            "    Products built on the data state its source and the date it was obtained (Art. 25).",
            "七、报告义务 / Reporting: 乙方每 6 个月在平台提交开发利用情况报告；大数据局定期跟踪了解开发利用情况。",
            "    The user files a usage report on the platform every 6 months; the bureau tracks the use.",
            "八、撤销 / Revocation: 违反本协议的，甲方或大数据局可撤销授权，授权撤销后立即失效。",
            "    A breach lets the provider or the bureau revoke the grant, with immediate effect.",
            f"九、授权核验 / Checking the licence: {site_url.rstrip('/')}/licences/<授权编号 / licence number>",
            "",
            "乙方在平台点击“接受协议”即表示同意以上全部条款。 / Clicking “Accept” on the platform accepts all terms above.",
        ]
    )
