"""A second portal harvests this portal's own CKAN API, as a city portal would harvest a
district's: what is public arrives with its class, department and data; nothing else does."""

from __future__ import annotations

import pyarrow.parquet as pq
from sqlalchemy import select

from harvest.sources import CkanSource
from portal.config import Settings
from portal.context import PortalContext
from portal.models import Dataset, DatasetStatus


def test_a_second_portal_harvests_this_one_through_its_ckan_api(portal_data, live_server, tmp_path):
    # The second instance has its own SQLite database and files (the first may be on PostgreSQL).
    city = PortalContext(Settings(instance_path=tmp_path / "city"))
    report = city.harvester().run(CkanSource(live_server))
    assert report.counts.get("failed", 0) == 0, [
        e for e in report.as_dict()["entries"] if e["action"] == "failed"
    ]

    with portal_data.sessions() as s:
        district = {
            d.name: (d.title, d.open_class, d.department.name)
            for d in s.scalars(select(Dataset))
            if d.is_public
        }
        original = (
            s.scalar(select(Dataset).where(Dataset.name == "371502-scj-0001"))
            .current_distributions[0]
            .tables[0]
        )
        original_rows = pq.read_table(portal_data.storage.local_path(original.parquet_path)).to_pylist()
    with city.sessions() as s:
        arrived = {d.name: d for d in s.scalars(select(Dataset))}
        assert set(arrived) == set(district)  # not-open, held and withdrawn never left the first portal
        for name, (title, open_class, department) in district.items():
            here = arrived[name]
            assert (here.title, here.open_class, here.status, here.department.name) == (
                title,
                open_class,
                "published",
                department,
            )

        # Unconditional data arrives once per table (one format, not the CSV and the XLSX again).
        pharmacies = arrived["371502-scj-0001"]
        [table] = [t for d in pharmacies.current_distributions for t in d.tables]
        assert pq.read_table(city.storage.local_path(table.parquet_path)).to_pylist() == original_rows

        # Conditional data: the catalog entry and its conditions, never a file (the link leads to
        # the first portal's licence flow; a page is not data).
        credit = arrived["371502-scj-0002"]
        assert credit.status == DatasetStatus.PUBLISHED.value and credit.open_conditions == "仅限监管用途"
        assert credit.current_distributions == []
        assert credit.source_fields["apply_url"] == f"{live_server}/dataset/371502-scj-0002#apply"
    city.engine.dispose()

    # The city portal's page sends applicants to the district's licence flow.
    from portal.app import create_app

    site = create_app({"instance": tmp_path / "city", "TESTING": True})
    page = site.test_client().get("/dataset/371502-scj-0002").get_data(as_text=True)
    assert f'href="{live_server}/dataset/371502-scj-0002#apply"' in page and "/apply?dataset=" not in page
    site.extensions["portal"].engine.dispose()
