"""More than one machine: every node of a portal holds the same secret key and sees the same
data files, or it does not start (portal/deployment.py, docs/deploy.md)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from portal.cli import main
from portal.config import Settings
from portal.context import PortalContext
from portal.deployment import DeploymentMismatch


def second_node(settings: Settings, tmp_path, **differences) -> Settings:
    """Another machine on the same database: its own instance folder, the first node's key and
    shared files folder unless told otherwise."""
    values = {
        "instance_path": tmp_path / "node-2",
        "database_url": settings.database_url,
        "search_backend": settings.search_backend,
        "secret_key": settings.load_secret_key(),
        "files_path": settings.files_path,
        **differences,
    }
    return Settings(**values)


def test_a_node_sharing_the_key_and_the_files_starts_as_the_same_portal(app, portal_data, settings, tmp_path):
    first = app.extensions["portal"]
    other = PortalContext(second_node(settings, tmp_path))
    try:
        assert other.identity == first.identity
        assert (
            other.cache_namespace == first.cache_namespace
        )  # one page cache for the portal, not one per node
    finally:
        other.engine.dispose()


def test_a_node_with_another_secret_key_does_not_start_and_says_what_to_set(
    app, settings, tmp_path, monkeypatch
):
    """Its forms, sessions and signed download links would fail on every other node, user by user."""
    node = second_node(settings, tmp_path, secret_key="not-the-portal-s-key")
    with pytest.raises(DeploymentMismatch, match="PORTAL_SECRET_KEY"):
        PortalContext(node)

    # From the command line: one sentence, exit 1, no traceback.
    monkeypatch.setenv("PORTAL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PORTAL_SECRET_KEY", "not-the-portal-s-key")
    monkeypatch.setenv("PORTAL_FILES_PATH", str(settings.files_path))
    result = CliRunner().invoke(main, ["--instance", str(tmp_path / "node-3"), "init"])
    assert result.exit_code == 1
    assert "secret key is not the one" in result.output and "Traceback" not in result.output
    # Both of its problems at once (its folder is its own as well): not one per attempt.
    monkeypatch.delenv("PORTAL_FILES_PATH")
    both = CliRunner().invoke(main, ["--instance", str(tmp_path / "node-4"), "init"])
    assert "secret key is not the one" in both.output and "is not the portal's" in both.output

    # Under gunicorn: the reason in one line, and the master stops (exit 3) instead of a traceback per worker.
    import subprocess
    import sys

    booted = subprocess.run(
        [sys.executable, "-c", "import portal.wsgi"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PORTAL_INSTANCE": str(tmp_path / "node-5")},
    )
    assert booted.returncode == 3 and "secret key is not the one" in booted.stderr
    assert "Traceback" not in booted.stderr


@pytest.mark.parametrize("harvested", [True, False], ids=["after-a-harvest", "before-any-harvest"])
def test_a_node_with_a_files_folder_of_its_own_does_not_start(app, settings, tmp_path, harvested, request):
    """A harvest on the first node wrote (or would write) files this node could not serve:
    every download of them would fail here."""
    if harvested:
        request.getfixturevalue("portal_data")
    node = second_node(settings, tmp_path, files_path=tmp_path / "node-2-own-files")
    with pytest.raises(DeploymentMismatch, match="PORTAL_FILES_PATH"):
        PortalContext(node)


def test_the_secret_key_is_never_stored_in_the_database(app, settings):
    from sqlalchemy import text

    with app.extensions["portal"].engine.connect() as conn:
        row = conn.execute(text("SELECT identity, secret_fingerprint, storage FROM deployment")).one()
    assert settings.load_secret_key() not in " ".join(row)
    assert row.storage.startswith("folder:")
    assert (settings.files_path / ".portal-deployment").read_text().strip() == row.storage.removeprefix(
        "folder:"
    )


def test_files_moved_to_a_new_place_are_recorded_only_once_all_are_there(
    app, portal_data, settings, tmp_path, monkeypatch
):
    """The operator moves the files to a shared mount: a node pointed there is refused until
    `portal deploy files-moved` has checked the copy; after it the old place is refused."""
    import shutil

    new_place = tmp_path / "shared-mount"
    monkeypatch.setenv("PORTAL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PORTAL_SEARCH_BACKEND", settings.search_backend)
    monkeypatch.setenv("PORTAL_FILES_PATH", str(new_place))
    node = ["--instance", str(settings.instance_path)]

    stored = app.extensions["portal"].storage.list_files()
    half = stored[: len(stored) // 2]
    for relative in half:
        (new_place / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(settings.files_path / relative, new_place / relative)
    result = CliRunner().invoke(main, [*node, "deploy", "files-moved"])
    assert result.exit_code == 1 and "nothing was changed" in result.output
    assert stored[-1] in result.output or "..." in result.output
    with pytest.raises(DeploymentMismatch):  # still the old place's portal
        PortalContext(Settings.load({"instance": settings.instance_path}))

    shutil.copytree(
        settings.files_path,
        new_place,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".cache", ".scratch", ".portal-deployment"),
    )
    result = CliRunner().invoke(main, [*node, "deploy", "files-moved"])
    assert result.exit_code == 0, result.output
    again = CliRunner().invoke(main, [*node, "deploy", "files-moved"])
    assert "already here: nothing to record" in again.output
    moved = PortalContext(Settings.load({"instance": settings.instance_path}))
    assert moved.identity == app.extensions["portal"].identity
    moved.engine.dispose()
    with pytest.raises(DeploymentMismatch):  # a node left on the old folder
        PortalContext(
            Settings(
                instance_path=tmp_path / "old-node",
                database_url=settings.database_url,
                secret_key=settings.load_secret_key(),
                files_path=settings.files_path,
            )
        )
