"""The CKAN-shaped API, checked with CKAN's own client (ckanapi) over a real socket."""
from __future__ import annotations

import pytest
from ckanapi import NotFound, RemoteCKAN


@pytest.fixture
def ckan(live_server, portal_data):
    return RemoteCKAN(live_server)


def test_package_search_in_ckan_shape(ckan):
    result = ckan.action.package_search(q="药品")
    assert result["count"] == 1
    [pkg] = result["results"]
    assert pkg["name"] == "371502-scj-0001" and pkg["organization"]["title"] == "东昌府区市场监督管理局"
    extras = {e["key"]: e["value"] for e in pkg["extras"]}
    assert extras["resource_code"] == "371502-SCJ-0001" and extras["open_class"] == "unconditional"
    assert {r["format"] for r in pkg["resources"]} == {"CSV", "XLSX", "JSON", "PARQUET"}
    assert all(r["hash"].startswith("sha256:") for r in pkg["resources"])


def test_package_search_filters_facets_rows_and_sort(ckan):
    result = ckan.call_action("package_search", {"fq": "organization:dcf-scjgj", "rows": 1, "start": 0,
                                                 "facet.field": ["res_format", "organization"], "sort": "name asc"})
    assert result["count"] == 2 and len(result["results"]) == 1
    assert result["facets"]["organization"] == {"dcf-scjgj": 2}
    items = result["search_facets"]["organization"]["items"]
    assert items == [{"name": "dcf-scjgj", "display_name": "东昌府区市场监督管理局", "count": 2}]
    everything = ckan.action.package_search(q="*:*", rows=1000)
    assert sorted(p["name"] for p in everything["results"]) == ["371502-jty-0001", "371502-scj-0001",
                                                                "371502-scj-0002"]


def test_conditional_resources_lead_to_the_licence_flow(ckan):
    pkg = ckan.action.package_show(id="371502-scj-0002")
    extras = {e["key"]: e["value"] for e in pkg["extras"]}
    assert extras["legal_basis"] and extras["open_conditions"] == "仅限监管用途"
    assert pkg["resources"] and all(r["url"].endswith("/dataset/371502-scj-0002#apply") for r in pkg["resources"])


@pytest.mark.parametrize("name", ["371502-scj-0003", "371502-scj-0004", "371502-jty-0002", "nope"])
def test_package_show_404_for_not_open_held_withdrawn_unknown(ckan, name):
    with pytest.raises(NotFound):
        ckan.action.package_show(id=name)


def test_bad_parameters_have_a_clear_message(client, portal_data):
    response = client.get("/api/3/action/package_search?rows=many")
    assert response.status_code == 409 and response.json["success"] is False
    assert "rows" in response.json["error"]["message"]


def test_get_requests_under_api_3(client, portal_data):
    response = client.get("/api/3/action/package_search",
                          query_string={"q": "公交", "fq": 'groups:"交通运输"', "facet.field": '["groups"]'})
    body = response.json
    assert body["success"] is True and body["result"]["count"] == 1
    assert body["result"]["facets"] == {"groups": {"交通运输": 1}}
    missing = client.get("/api/3/action/package_show", query_string={"id": "371502-scj-0003"})
    assert missing.status_code == 404 and missing.json["error"]["__type"] == "Not Found Error"
