"""DCAT-AP 3 output, validated with pyshacl against the official DCAT-AP 3.0.0 SHACL shapes
(copied from ../shared/dcat-ap into tests/data/dcat-ap)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import Graph

SHAPES = Path(__file__).parent / "data" / "dcat-ap"


def validate(data: Graph, files=("shapes.ttl", "range.ttl")) -> tuple[bool, str]:
    from pyshacl import validate as shacl

    shapes = Graph()
    for name in files:
        shapes.parse(SHAPES / name)
    conforms, _, text = shacl(data, shacl_graph=shapes, inference="none", allow_warnings=True)
    return conforms, text


@pytest.mark.parametrize("suffix,fmt", [("ttl", "turtle"), ("rdf", "xml"), ("jsonld", "json-ld")])
def test_catalog_in_every_serialization_conforms(client, portal_data, suffix, fmt):
    response = client.get(f"/catalog.{suffix}")
    assert response.status_code == 200
    g = Graph().parse(data=response.get_data(as_text=True), format=fmt)
    conforms, report = validate(g)
    assert conforms, report
    text = response.get_data(as_text=True)
    assert "药品零售企业名录" in text and "企业信用风险分类结果" in text
    assert "执法检查底稿" not in text and "公益岗位人员名单" not in text and "Bus routes" not in text


def test_dataset_documents_and_access_rights(client, portal_data):
    open_ds = Graph().parse(
        data=client.get("/dataset/371502-scj-0001.ttl").get_data(as_text=True), format="turtle"
    )
    conditional = client.get("/dataset/371502-scj-0002.ttl").get_data(as_text=True)
    assert validate(open_ds)[0]
    assert "access-right/PUBLIC" in open_ds.serialize(format="turtle")
    assert "access-right/RESTRICTED" in conditional and "仅限监管用途" in conditional
    assert (
        "/download/" not in conditional and "#apply" in conditional
    )  # never a direct link to conditional data
    assert client.get("/dataset/371502-scj-0003.ttl").status_code == 404


def test_content_negotiation(client, portal_data):
    response = client.get("/catalog", headers={"Accept": "application/ld+json"})
    assert response.mimetype == "application/ld+json"
    assert client.get("/catalog", headers={"Accept": "text/turtle"}).mimetype == "text/turtle"
