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
    result = ckan.call_action(
        "package_search",
        {
            "fq": "organization:dcf-scjgj",
            "rows": 1,
            "start": 0,
            "facet.field": ["res_format", "organization"],
            "sort": "name asc",
        },
    )
    assert result["count"] == 2 and len(result["results"]) == 1
    assert result["facets"]["organization"] == {"dcf-scjgj": 2}
    items = result["search_facets"]["organization"]["items"]
    assert items == [{"name": "dcf-scjgj", "display_name": "东昌府区市场监督管理局", "count": 2}]
    everything = ckan.action.package_search(q="*:*", rows=1000)
    assert sorted(p["name"] for p in everything["results"]) == [
        "371502-jty-0001",
        "371502-scj-0001",
        "371502-scj-0002",
    ]


def test_conditional_resources_lead_to_the_licence_flow(ckan):
    pkg = ckan.action.package_show(id="371502-scj-0002")
    extras = {e["key"]: e["value"] for e in pkg["extras"]}
    assert extras["legal_basis"] and extras["open_conditions"] == "仅限监管用途"
    assert pkg["resources"] and all(
        r["url"].endswith("/dataset/371502-scj-0002#apply") for r in pkg["resources"]
    )


@pytest.mark.parametrize("name", ["371502-scj-0003", "371502-scj-0004", "371502-jty-0002", "nope"])
def test_package_show_404_for_not_open_held_withdrawn_unknown(ckan, name):
    with pytest.raises(NotFound):
        ckan.action.package_show(id=name)


def test_bad_parameters_have_a_clear_message(client, portal_data):
    response = client.get("/api/3/action/package_search?rows=many")
    assert response.status_code == 409 and response.json["success"] is False
    assert "rows" in response.json["error"]["message"]


def test_get_requests_under_api_3(client, portal_data):
    response = client.get(
        "/api/3/action/package_search",
        query_string={"q": "公交", "fq": 'groups:"交通运输"', "facet.field": '["groups"]'},
    )
    body = response.json
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert body["success"] is True and body["result"]["count"] == 1
    assert body["result"]["facets"] == {"groups": {"交通运输": 1}}
    missing = client.get("/api/3/action/package_show", query_string={"id": "371502-scj-0003"})
    assert missing.status_code == 404 and missing.json["error"]["__type"] == "Not Found Error"


def test_the_rest_of_the_ckan_read_api_with_ckanapi(ckan):
    assert ckan.action.status_show()["api_version"] == 3
    assert ckan.action.package_list() == ["371502-jty-0001", "371502-scj-0001", "371502-scj-0002"]
    assert ckan.action.package_list(limit=1, offset=1) == ["371502-scj-0001"]
    current = ckan.action.current_package_list_with_resources(limit=10)
    assert {p["name"] for p in current} == {"371502-jty-0001", "371502-scj-0001", "371502-scj-0002"}
    assert ckan.action.organization_list() == ["dcf-jtysj", "dcf-scjgj"]
    orgs = {o["name"]: o for o in ckan.action.organization_list(all_fields=True)}
    assert orgs["dcf-scjgj"]["package_count"] == 2 and orgs["dcf-scjgj"]["title"] == "东昌府区市场监督管理局"
    org = ckan.action.organization_show(id="dcf-scjgj", include_datasets=True)
    assert sorted(p["name"] for p in org["packages"]) == ["371502-scj-0001", "371502-scj-0002"]
    assert ckan.action.group_list() == ["交通运输", "市场监管"]
    assert "药店" in ckan.action.tag_list() and ckan.action.tag_list(query="药") == ["药店"]
    resource = ckan.action.package_show(id="371502-scj-0001")["resources"][0]
    assert ckan.action.resource_show(id=resource["id"])["url"] == resource["url"]


@pytest.mark.parametrize(
    "action,params",
    [
        ("organization_show", {"id": "nope"}),
        ("resource_show", {"id": "999999-csv"}),
        ("resource_show", {"id": "garbage"}),
    ],
)
def test_unknown_objects_are_not_found(ckan, action, params):
    with pytest.raises(NotFound):
        ckan.call_action(action, params)


def test_resources_of_hidden_datasets_are_not_found(ckan, portal_data):
    from sqlalchemy import select

    from portal.models import Dataset, DataTable, Distribution

    with portal_data.sessions() as s:
        ids = s.scalars(
            select(DataTable.id)
            .join(Distribution)
            .join(Dataset)
            .where(Dataset.name.in_(["371502-scj-0004", "371502-jty-0002"]))
        ).all()
    assert ids
    for table_id in ids:
        with pytest.raises(NotFound):
            ckan.action.resource_show(id=f"{table_id}-csv")


def test_a_start_beyond_any_result_is_an_empty_page_not_an_error(client, portal_data):
    """schemathesis found start=13953085900008082898944 answered 500 on PostgreSQL (OFFSET is 64-bit)."""
    response = client.get("/api/3/action/package_search", query_string={"start": "13953085900008082898944"})
    assert response.status_code == 200 and response.json["result"]["results"] == []
    assert response.json["result"]["count"] >= 1
