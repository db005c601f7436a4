"""DCAT-AP 3 for the catalog and each public dataset (rdflib): Turtle, RDF/XML, JSON-LD.

The open class is dct:accessRights (EU access-right vocabulary: PUBLIC for unconditional,
RESTRICTED for conditional), the conditions and legal basis are RightsStatements, and every
dataset conformsTo the Dongchangfu measures. Only public datasets are described.
"""

from __future__ import annotations

from collections.abc import Sequence

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from .. import open_licence
from ..models import Dataset, OpenClass

DCATAP = Namespace("http://data.europa.eu/r5r/")
SPDX = Namespace("http://spdx.org/rdf/terms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
ACCESS = Namespace("http://publications.europa.eu/resource/authority/access-right/")
FREQ = Namespace("http://publications.europa.eu/resource/authority/frequency/")
MEASURES = URIRef("https://www.dongchangfu.gov.cn/measures/2020-12")  # 东昌政办字〔2020〕12号
FORMATS = {"csv": "CSV", "xlsx": "XLSX", "json": "JSON", "parquet": "PARQUET"}
MEDIA = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
CYCLES = {
    "实时": "CONT",
    "每日": "DAILY",
    "每周": "WEEKLY",
    "每月": "MONTHLY",
    "每季度": "QUARTERLY",
    "每半年": "BIANNUAL",
    "每年": "ANNUAL",
    "不定期": "IRREG",
}
FORMAT_SUFFIX = {"ttl": "turtle", "rdf": "xml", "jsonld": "json-ld"}
MIME = {
    "turtle": "text/turtle; charset=utf-8",
    "xml": "application/rdf+xml; charset=utf-8",
    "json-ld": "application/ld+json; charset=utf-8",
}


def graph() -> Graph:
    g = Graph()
    for prefix, ns in (
        ("dcat", DCAT),
        ("dct", DCTERMS),
        ("foaf", FOAF),
        ("dcatap", DCATAP),
        ("spdx", SPDX),
        ("vcard", VCARD),
        ("skos", SKOS),
    ):
        g.bind(prefix, ns)
    return g


def _agent(g: Graph, base: str, code: str, name: str) -> URIRef:
    agent = URIRef(f"{base}/department/{code}")
    g.add((agent, RDF.type, FOAF.Agent))
    g.add((agent, FOAF.name, Literal(name, lang="zh")))
    return agent


def add_dataset(g: Graph, base: str, ds: Dataset) -> URIRef:
    node = URIRef(f"{base}/dataset/{ds.name}")
    g.add((node, RDF.type, DCAT.Dataset))
    g.add((node, DCTERMS.title, Literal(ds.title, lang="zh")))
    if ds.edits and ds.edits.get("title_en"):
        g.add((node, DCTERMS.title, Literal(ds.edits["title_en"], lang="en")))
    g.add((node, DCTERMS.description, Literal(ds.summary or ds.title, lang="zh")))
    if ds.edits and ds.edits.get("summary_en"):
        g.add((node, DCTERMS.description, Literal(ds.edits["summary_en"], lang="en")))
    g.add((node, DCTERMS.identifier, Literal(ds.resource_code or ds.name)))
    g.add((node, DCAT.landingPage, _document(g, str(node))))  # the dataset's page is its URI
    g.add((node, DCTERMS.publisher, _agent(g, base, ds.department.code, ds.department.name)))
    point = BNode()
    g.add((point, RDF.type, VCARD.Kind))
    g.add((point, VCARD.fn, Literal(ds.department.name, lang="zh")))
    g.add((node, DCAT.contactPoint, point))
    for tag in ds.tags or []:
        g.add((node, DCAT.keyword, Literal(tag, lang="zh")))
    if ds.domain:
        theme = URIRef(f"{base}/domain/{ds.domain}")
        g.add((theme, RDF.type, SKOS.Concept))
        g.add((theme, SKOS.prefLabel, Literal(ds.domain, lang="zh")))
        g.add((node, DCAT.theme, theme))
    if ds.published_date:
        g.add((node, DCTERMS.issued, Literal(ds.published_date, datatype=XSD.date)))
    g.add((node, DCTERMS.modified, Literal(ds.updated_at.replace(microsecond=0), datatype=XSD.dateTime)))
    if ds.update_cycle in CYCLES:
        frequency = FREQ[CYCLES[ds.update_cycle]]
        g.add((frequency, RDF.type, DCTERMS.Frequency))
        g.add((node, DCTERMS.accrualPeriodicity, frequency))
    rights = ACCESS["PUBLIC" if ds.open_class == OpenClass.UNCONDITIONAL.value else "RESTRICTED"]
    g.add((rights, RDF.type, DCTERMS.RightsStatement))
    g.add((node, DCTERMS.accessRights, rights))
    g.add((MEASURES, RDF.type, DCTERMS.Standard))
    g.add((MEASURES, DCTERMS.title, Literal("东昌府区政务数据资源管理暂行办法", lang="zh")))
    g.add((node, DCTERMS.conformsTo, MEASURES))
    _rights(g, node, ds)
    for t in ds.served_tables:
        for fmt, facts in t.formats.items():
            g.add((node, DCAT.distribution, _distribution(g, base, ds, t.id, fmt, facts)))
    return node


def _rights(g: Graph, node: URIRef, ds: Dataset) -> None:
    """How the data may be used: the open licence's duty, or the conditions of an application."""
    statement = BNode()
    g.add((statement, RDF.type, DCTERMS.RightsStatement))
    if ds.open_class == OpenClass.UNCONDITIONAL.value:
        words = f"依据{open_licence.CURRENT.title['zh']}使用：须注明数据来源和获取日期"
    elif ds.open_class == OpenClass.CONDITIONAL.value:
        words = f"开放条件：{ds.effective_conditions or '—'}；法律依据：{ds.effective_basis}"
    else:
        return
    g.add((statement, DCTERMS.description, Literal(words, lang="zh")))
    g.add((node, DCTERMS.rights, statement))


def _open_licence(g: Graph, base: str) -> URIRef:
    licence = open_licence.CURRENT
    node = URIRef(licence.url(base))
    g.add((node, RDF.type, DCTERMS.LicenseDocument))
    g.add((node, DCTERMS.title, Literal(licence.title["zh"], lang="zh")))
    g.add((node, DCTERMS.title, Literal(licence.title["en"], lang="en")))
    g.add((node, DCTERMS.identifier, Literal(licence.id)))
    return node


def _document(g: Graph, url: str) -> URIRef:
    page = URIRef(url)
    g.add((page, RDF.type, FOAF.Document))
    return page


def _distribution(g: Graph, base: str, ds: Dataset, table_id: int, fmt: str, facts: dict) -> URIRef:
    node = URIRef(f"{base}/dataset/{ds.name}#table-{table_id}-{fmt}")
    g.add((node, RDF.type, DCAT.Distribution))
    g.add((node, DCTERMS.title, Literal(f"{ds.title} ({FORMATS[fmt]})", lang="zh")))
    if ds.open_class == OpenClass.UNCONDITIONAL.value:
        url = URIRef(f"{base}/dataset/{ds.name}/download/{table_id}.{fmt}")
        g.add((node, DCAT.downloadURL, url))
        g.add((node, DCAT.accessURL, url))
        g.add((node, DCTERMS.license, _open_licence(g, base)))
        # The table schema with the data dictionary (Frictionless Table Schema in datapackage.json).
        schema = URIRef(f"{base}/dataset/{ds.name}/datapackage.json")
        g.add((schema, RDF.type, DCTERMS.Standard))
        g.add((node, DCTERMS.conformsTo, schema))
    else:  # conditional: reached through the licence flow, never a direct link to data
        g.add((node, DCAT.accessURL, URIRef(f"{base}/dataset/{ds.name}#apply")))
    g.add(
        (node, DCAT.byteSize, Literal(facts["size"], datatype=XSD.decimal))
    )  # the DCAT-AP 3 shapes ask for xsd:decimal
    g.add((node, DCAT.mediaType, _media(g, fmt)))
    checksum = BNode()
    g.add((checksum, RDF.type, SPDX.Checksum))
    g.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
    g.add((checksum, SPDX.checksumValue, Literal(facts["sha256"], datatype=XSD.hexBinary)))
    g.add((node, SPDX.checksum, checksum))
    return node


def _media(g: Graph, fmt: str) -> URIRef:
    media = URIRef(f"https://www.iana.org/assignments/media-types/{MEDIA[fmt].split(';')[0]}")
    g.add((media, RDF.type, DCTERMS.MediaType))
    return media


def catalog_graph(base: str, datasets: Sequence[Dataset], page: int, pages: int) -> Graph:
    g = graph()
    node = URIRef(f"{base}/catalog")
    g.add((node, RDF.type, DCAT.Catalog))
    g.add((node, DCTERMS.title, Literal("东昌府区公共数据开放平台", lang="zh")))
    g.add((node, DCTERMS.title, Literal("Dongchangfu District Open Data Portal", lang="en")))
    g.add((node, DCTERMS.description, Literal("东昌府区政务数据的无条件开放和有条件开放目录", lang="zh")))
    g.add((node, DCTERMS.publisher, _agent(g, base, "bureau", "东昌府区大数据局")))
    g.add((node, FOAF.homepage, _document(g, f"{base}/")))
    for ds in datasets:
        g.add((node, DCAT.dataset, add_dataset(g, base, ds)))
    if pages > 1:  # Hydra-style paging, as DCAT-AP recommends for large catalogs
        hydra = Namespace("http://www.w3.org/ns/hydra/core#")
        g.bind("hydra", hydra)
        view = URIRef(f"{base}/catalog.ttl?page={page}")
        g.add((view, RDF.type, hydra.PartialCollectionView))
        if page < pages:
            g.add((view, hydra.next, URIRef(f"{base}/catalog.ttl?page={page + 1}")))
        g.add((view, hydra.last, URIRef(f"{base}/catalog.ttl?page={pages}")))
    return g
