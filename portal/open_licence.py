"""The open licence of unconditional data (开放数据使用协议): attribution only, in the spirit of
CC BY 4.0, with the measures' duty to state the source and the date of acquisition (Art. 25).

Versioned: a dataset page, datapackage.json, DCAT and the CKAN API name the version in force,
and data obtained under a version stays under it. A new version is a new entry in VERSIONS
(never an edit of an old one) and CURRENT moves to it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpenLicence:
    version: str
    id: str
    title: dict[str, str]
    clauses: dict[str, list[str]]
    published: str

    @property
    def path(self) -> str:
        return f"/open-licence/{self.version}"

    def url(self, site: str) -> str:
        return f"{site.rstrip('/')}{self.path}"


VERSIONS = {
    "1.0": OpenLicence(
        version="1.0",
        id="DCF-ODL-1.0",
        published="2026-12-06",
        title={
            "zh": "东昌府区公共数据开放使用协议（署名）1.0",
            "en": "Dongchangfu District Open Data Licence (Attribution) 1.0",
        },
        clauses={
            "zh": [
                "适用范围：本协议适用于东昌府区公共数据开放平台以“无条件开放”方式提供的数据。有条件开放的数据按各自的授权协议使用。",
                "授权：在遵守本协议的前提下，您可以免费、非独占、不可撤销地复制、传播、改编、汇编本数据，并用于商业或非商业目的。",
                "署名：使用本数据或利用其形成的数据产品，应注明数据来源（提供部门和数据集名称）和获取日期（《东昌府区政务数据资源管理暂行办法》第二十五条），例如：“数据来源：东昌府区市场监督管理局《药品零售企业名录》，获取日期 2026-12-06”。",
                "不得歪曲：不得以歪曲、篡改数据原意的方式使用，不得暗示提供部门或本平台为您或您的产品背书。",
                "合法使用：不得利用本数据从事违法活动，不得试图识别特定自然人，不得损害国家安全、公共利益和他人的合法权益。",
                "无担保：数据按现状提供。提供部门尽力保证其准确、及时，但不对使用结果承担责任；发现错误请通过平台“数据纠错”告知。",
                "版本：本协议可能更新。数据集页面、数据包和文件元数据注明所适用的版本；已获取的数据继续适用获取时的版本。",
                "参照：本协议参照知识共享署名 4.0 国际许可协议（CC BY 4.0）的精神制定。",
            ],
            "en": [
                "Scope: this licence applies to the data the Dongchangfu District open data portal provides as unconditionally open. Conditionally open data is used under its own licence agreements.",
                "Grant: as long as you follow this licence, you may copy, distribute, adapt and combine the data, free of charge, non-exclusively and irrevocably, for commercial or non-commercial purposes.",
                "Attribution: when you use the data or products made with it, state the source (the providing department and the dataset's name) and the date you obtained it (Art. 25 of the Dongchangfu District Interim Measures on Government Data Resources), for example: “Source: Dongchangfu District Administration for Market Regulation, Retail pharmacies; obtained 2026-12-06”.",
                "No distortion: do not use the data in a way that distorts its meaning, and do not suggest that the providing department or this portal endorses you or your products.",
                "Lawful use: do not use the data for unlawful purposes, do not try to identify natural persons, and do not harm national security, the public interest or the lawful rights of others.",
                "No warranty: the data is provided as it is. The providing departments do their best to keep it accurate and current but are not liable for the results of its use; report errors through the portal's error reports.",
                "Versions: this licence may be updated. Dataset pages, data packages and file metadata name the version that applies; data already obtained stays under the version in force when it was obtained.",
                "Reference: this licence follows the spirit of the Creative Commons Attribution 4.0 International licence (CC BY 4.0).",
            ],
        },
    ),
}
CURRENT = VERSIONS["1.0"]
