"""The open licence of unconditional data (portal/open_licence.py, issue 20 item 3): a versioned,
bilingual 开放数据使用协议 shown on every unconditional dataset and named in datapackage.json,
DCAT (SHACL-valid), the CKAN API and the files' own metadata; conditional data names none."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from rdflib import Graph, URIRef
from rdflib.namespace import DCTERMS

from portal.open_licence import CURRENT
from tests.helpers import table_of

SHAPES = Path(__file__).parent / "data" / "dcat-ap"


def test_the_licence_has_a_page_per_version_in_the_readers_language(client):
    assert client.get("/open-licence").headers["Location"].endswith("/open-licence/1.0")
    page = client.get("/open-licence/1.0").get_data(as_text=True)
    assert CURRENT.title["zh"] in page and "获取日期" in page and "CC BY 4.0" in page
    client.set_cookie("lang", "en")
    english = client.get("/open-licence/1.0").get_data(as_text=True)
    assert CURRENT.title["en"] in english and "state the source" in english and "获取日期" not in english
    assert client.get("/open-licence/9.9").status_code == 404


def test_unconditional_data_names_its_licence_everywhere(client, portal_data):
    page = client.get("/dataset/371502-scj-0001").get_data(as_text=True)
    assert 'rel="license"' in page and CURRENT.title["zh"] in page
    assert 'rel="license"' not in client.get("/dataset/371502-scj-0002").get_data(as_text=True)

    package = client.get("/dataset/371502-scj-0001/datapackage.json").get_json()
    [licence] = package["licenses"]
    assert licence["name"] == CURRENT.id and licence["path"].endswith("/open-licence/1.0")
    from frictionless import Package

    assert list(Package.metadata_validate(package)) == []  # no error: the licences entry is well formed

    shown = client.get("/api/3/action/package_show?id=371502-scj-0001").get_json()["result"]
    assert shown["license_id"] == CURRENT.id and shown["license_url"].endswith("/open-licence/1.0")
    conditional = client.get("/api/3/action/package_show?id=371502-scj-0002").get_json()["result"]
    assert conditional["license_id"] == "conditional" and conditional["license_url"].endswith("#apply")

    table = table_of(portal_data, "371502-scj-0001")
    metadata = pq.read_schema(portal_data.storage.local_path(table.parquet_path)).metadata
    assert CURRENT.id in metadata[b"license"].decode(), metadata.keys()


def test_dcat_names_the_licence_and_rights_and_stays_valid(client, portal_data):
    from pyshacl import validate

    g = Graph().parse(data=client.get("/dataset/371502-scj-0001.ttl").get_data(as_text=True), format="turtle")
    licences = set(g.objects(None, DCTERMS.license))
    assert len(licences) == 1 and str(next(iter(licences))).endswith("/open-licence/1.0")
    assert (next(iter(licences)), DCTERMS.identifier, None) in g
    assert list(g.objects(URIRef(str(next(iter(g.subjects(DCTERMS.license, None))))), DCTERMS.license))
    assert any(True for _ in g.objects(None, DCTERMS.rights))
    shapes = Graph()
    for name in ("shapes.ttl", "range.ttl"):
        shapes.parse(SHAPES / name)
    conforms, _, text = validate(g, shacl_graph=shapes, inference="none", allow_warnings=True)
    assert conforms, text
    conditional = client.get("/dataset/371502-scj-0002.ttl").get_data(as_text=True)
    assert "open-licence" not in conditional


def test_a_bundle_names_the_portals_address_whatever_host_asked_first(client, portal_data):
    """The day's bundle is one file for every reader: its licence link comes from the portal's
    settings, not from the Host header of the request that happened to make it."""
    import io
    import json
    import zipfile

    table = table_of(portal_data, "371502-scj-0001")
    answer = client.get(f"/dataset/371502-scj-0001/bundle/{table.id}.zip", headers={"Host": "evil.example"})
    assert answer.status_code == 200
    package = json.loads(zipfile.ZipFile(io.BytesIO(answer.get_data())).read("datapackage.json"))
    [licence] = package["licenses"]
    assert "evil.example" not in licence["path"] and licence["path"].endswith("/open-licence/1.0")
