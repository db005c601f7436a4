"""One command writes a backup; restoring it into an empty instance gives the same portal:
the same rows, files, pages, search answers, accounts and licensed downloads."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from portal.app import create_app
from portal.cli import main
from tests.helpers import files_of, login, table_counts


def test_backup_and_restore_on_an_empty_instance_gives_the_same_portal(
    app, settings, portal_data, granted_world, tmp_path
):
    from portal.models import SearchSynonym

    with portal_data.sessions() as s:  # the bureau's synonym list travels with the portal
        s.add(SearchSynonym(term="候车亭", expansions=["公交站点"]))
        s.commit()
    archive = tmp_path / "portal-backup.tar.gz"
    runner = CliRunner()
    env = {"PORTAL_DATABASE_URL": settings.database_url}
    made = runner.invoke(main, ["--instance", str(settings.instance_path), "backup", str(archive)], env=env)
    assert made.exit_code == 0, made.output
    assert "files" in made.output and archive.stat().st_size > 0

    # An empty machine: a new instance folder with its own (SQLite) database.
    target = tmp_path / "restored"
    env_target = {"PORTAL_DATABASE_URL": ""}
    done = runner.invoke(main, ["--instance", str(target), "restore", str(archive)], env=env_target)
    assert done.exit_code == 0, done.output
    restored = create_app({"instance": target, "TESTING": True})
    ctx = restored.extensions["portal"]

    assert table_counts(ctx.engine) == table_counts(portal_data.engine)
    assert files_of(ctx.storage.root) == files_of(portal_data.storage.root)

    before, after = app.test_client(), restored.test_client()
    for url in ("/dataset/371502-scj-0001", "/dataset/371502-scj-0002", "/api/3/action/package_list"):
        assert after.get(url).status_code == 200
    assert after.get("/dataset/371502-scj-0003").status_code == 404  # still not open
    found = after.get("/api/3/action/package_search", query_string={"q": "药品"}).get_json()["result"]
    expected = before.get("/api/3/action/package_search", query_string={"q": "药品"}).get_json()["result"]
    assert sorted(p["name"] for p in found["results"]) == sorted(p["name"] for p in expected["results"])
    by_synonym = after.get("/api/3/action/package_search", query_string={"q": "候车亭"}).get_json()["result"]
    assert [p["name"] for p in by_synonym["results"]] == ["371502-jty-0001"]
    table_id = re.search(
        r"/download/(\d+)\.csv", after.get("/dataset/371502-scj-0001").get_data(as_text=True)
    ).group(1)
    url = f"/dataset/371502-scj-0001/download/{table_id}.csv"
    assert after.get(url).get_data() == before.get(url).get_data()

    # Accounts, the grant and its signed links work on the restored portal (same secret).
    assert restored.config["SECRET_KEY"] == app.config["SECRET_KEY"]
    _, email, password = granted_world
    assert login(after, email, password).status_code == 302
    link = re.search(
        r'href="(/grants/\d+/download/[^"]+)"', after.get("/grants").get_data(as_text=True)
    ).group(1)
    licensed = after.get(link, follow_redirects=True)
    assert licensed.status_code == 200 and licensed.mimetype == "application/zip"
    licensed.close()

    # A restore never mixes two portals: the target must be empty.
    again = runner.invoke(main, ["--instance", str(target), "restore", str(archive)], env=env_target)
    assert again.exit_code != 0 and "不是空的" in again.output
    ctx.engine.dispose()


@pytest.mark.parametrize("fails_in", ["files", "rows"])
def test_a_restore_that_fails_half_way_leaves_nothing_and_the_same_command_succeeds_again(
    settings, portal_data, tmp_path, monkeypatch, fails_in
):
    from portal import backup

    archive = tmp_path / "portal-backup.tar.gz"
    runner = CliRunner()
    made = runner.invoke(
        main,
        ["--instance", str(settings.instance_path), "backup", str(archive)],
        env={"PORTAL_DATABASE_URL": settings.database_url},
    )
    assert made.exit_code == 0, made.output
    target, env = tmp_path / "restored", {"PORTAL_DATABASE_URL": ""}
    if fails_in == "files":  # the third file cannot be written (a full disk, a store gone away)
        calls, real = [], backup._restore_file

        def third_fails(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise OSError(28, "No space left on device")
            return real(*args, **kwargs)

        monkeypatch.setattr(backup, "_restore_file", third_fails)
    else:  # the rows fail after some were inserted
        real_rows = backup._restore_rows

        def rows_then_fail(conn, *args, **kwargs):
            real_rows(conn, *args, **kwargs)
            raise RuntimeError("the connection dropped")

        monkeypatch.setattr(backup, "_restore_rows", rows_then_fail)
    failed = runner.invoke(main, ["--instance", str(target), "restore", str(archive)], env=env)
    assert failed.exit_code != 0
    left = create_app({"instance": target, "TESTING": True})
    counts = table_counts(left.extensions["portal"].engine)
    seed = counts.pop("search_synonyms")  # a new instance's seed, as before the restore
    counts.pop("deployment")  # and its own identity
    counts.pop("pages"), counts.pop("page_versions")  # and the first guide, FAQ, terms and privacy
    assert set(counts.values()) == {0} and seed > 0  # no row kept
    assert files_of(left.extensions["portal"].storage.root) == {}  # no file kept
    left.extensions["portal"].engine.dispose()

    monkeypatch.undo()
    again = runner.invoke(main, ["--instance", str(target), "restore", str(archive)], env=env)
    assert again.exit_code == 0, again.output
    restored = create_app({"instance": target, "TESTING": True})
    assert table_counts(restored.extensions["portal"].engine) == table_counts(portal_data.engine)
    restored.extensions["portal"].engine.dispose()
