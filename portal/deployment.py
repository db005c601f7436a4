"""One identity for a deployment, checked whenever a node starts (docs/deploy.md, "More than
one machine").

Every node of a portal must hold the same secret key (sessions, CSRF tokens, signed links and
sealed bids are made with it: a node with another key refuses every form the others made) and
see the same data files (a harvest on one node writes files every node serves). The database
they share keeps one `Deployment` row: an identity, a fingerprint of the key — an HMAC of a
fixed text under it, which says nothing of the key — and the files' place. The first node
to start on a database writes it; every later start compares, and a node that differs does not
start: it says what to set instead of failing user by user later.

The files' place is the object store's URL, or for a folder a marker file written into it
with a random stamp the database keeps: a second machine that mounts the same folder finds the
marker, one with a folder of its own does not, and after a move (`portal deploy files-moved`)
the old folder's marker carries a stamp the database no longer has.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .db import exclusive
from .models import Deployment
from .storage import LocalStorage, Storage

MARKER = LocalStorage.MARKER


class DeploymentMismatch(RuntimeError):
    """This node is not set up like the portal whose database it opened."""


def secret_fingerprint(secret: str) -> str:
    return hmac.new(secret.encode(), b"dongchangfu-portal deployment", hashlib.sha256).hexdigest()


def storage_place(storage: Storage) -> str:
    """What the database records of where the files are: the object store's URL, or for a
    folder a new stamp, also written into the folder's marker."""
    if isinstance(storage, LocalStorage):
        return f"folder:{secrets.token_hex(8)}"
    return str(getattr(storage, "url", type(storage).__name__)).rstrip("/")


def _stamp_folder(storage: Storage, place: str) -> None:
    if (marker := _marker(storage)) is not None:
        marker.write_text(place.removeprefix("folder:") + "\n")


def _marker(storage: Storage) -> Path | None:
    return storage.root / MARKER if isinstance(storage, LocalStorage) else None


def check(
    sessions: sessionmaker[Session], secret: str, storage: Storage, *, files_moving: bool = False
) -> str:
    """The deployment's identity, after checking this node against it (writing it if this is
    the first node on the database). Raises DeploymentMismatch with what to fix.

    files_moving: the operator is moving the files (`portal deploy files-moved`), so this
    node's files place is not checked; the key still is."""
    engine = sessions.kw["bind"]
    # Workers and nodes start together: the first writes the row and then the folder's marker,
    # and no other process may look in between (it would find a row and no marker).
    with exclusive(engine, "deployment"):
        try:
            return _check_or_create(sessions, secret, storage, files_moving)
        except IntegrityError:  # a process that does not take the lock (an older version) made it first
            return _check_or_create(sessions, secret, storage, files_moving)


def _check_or_create(
    sessions: sessionmaker[Session], secret: str, storage: Storage, files_moving: bool
) -> str:
    with sessions.begin() as s:
        row = s.scalar(select(Deployment).where(Deployment.id == 1))
        if row is None:
            row = Deployment(
                id=1,
                identity=secrets.token_hex(16),
                secret_fingerprint=secret_fingerprint(secret),
                storage=storage_place(storage),
            )
            s.add(row)
            s.flush()
            identity, place = row.identity, row.storage
        else:
            # Every problem at once: an operator fixing the key should not meet the files next.
            problems = (
                []
                if hmac.compare_digest(row.secret_fingerprint, secret_fingerprint(secret))
                else [
                    "This node's secret key is not the one this portal's database was set up with: every node "
                    "must use the same key. Set PORTAL_SECRET_KEY to the first node's key (its instance/secret_key) "
                    "on this node, then start it again."
                ]
            )
            if not files_moving:
                problems += _storage_problems(row, storage)
            if problems:
                raise DeploymentMismatch("\n".join(problems))
            return row.identity
    _stamp_folder(
        storage, place
    )  # once the row is committed: a marker never names a stamp the database lacks
    return identity


def is_the_portals_place(row: Deployment, storage: Storage) -> bool:
    marker = _marker(storage)
    if marker is not None and row.storage.startswith("folder:"):
        return marker.exists() and marker.read_text().strip() == row.storage.removeprefix("folder:")
    return storage_place(storage) == row.storage


def _storage_problems(row: Deployment, storage: Storage) -> list[str]:
    if is_the_portals_place(row, storage):
        return []
    if isinstance(storage, LocalStorage) and row.storage.startswith("folder:"):
        # No marker, or an old one: a folder of this machine's own (even an empty one: the first
        # harvest would write files no other node sees), or the place the files were moved from.
        return [
            f"This node's files folder ({storage.root}) is not the portal's: the portal's files are in the "
            "folder the first node uses (it holds a file named .portal-deployment). With more than one machine, "
            "mount that folder at the same path on every node and on the nginx host and set PORTAL_FILES_PATH "
            "to it, or put the files on an object store (PORTAL_FILES_URL). Only if you are moving all of the "
            "portal's files here on purpose: copy them, then run `portal deploy files-moved`."
        ]
    return [
        f"This node's data files are {_described(storage_place(storage), storage)}, but this portal's are "
        f"{_described(row.storage)}. Every node must use the same PORTAL_FILES_URL (or the same shared folder, "
        "PORTAL_FILES_PATH). To move the files, copy them under the same names, then run "
        "`portal deploy files-moved` (docs/deploy.md)."
    ]


def _described(place: str, storage: Storage | None = None) -> str:
    if isinstance(storage, LocalStorage):
        return f"in the folder {storage.root}"
    return "in a files folder" if place.startswith("folder:") else f"at {place}"


def record_new_secret(s: Session, secret: str) -> None:
    """The portal's key is now `secret` (`portal deploy change-secret-key`, in the transaction
    that re-sealed the bids): nodes with the old key no longer start."""
    row = s.get(Deployment, 1)
    if row is not None:
        row.secret_fingerprint = secret_fingerprint(secret)


def missing_files(sessions: sessionmaker[Session], storage: Storage) -> list[str]:
    """Stored names the database refers to (for versions whose files were not purged) that this
    storage does not hold: what a move left behind."""
    from .models import DataTable, Distribution

    with sessions() as s:
        referenced = set(
            s.scalars(select(Distribution.original_path).where(Distribution.purged_at.is_(None)))
        )
        for parquet, csv, formats in s.execute(
            select(DataTable.parquet_path, DataTable.csv_path, DataTable.formats)
            .join(Distribution)
            .where(Distribution.purged_at.is_(None))
        ):
            referenced |= {parquet, csv} | {f["path"] for f in (formats or {}).values()}
    return sorted((referenced - {""}) - set(storage.list_files()))


def record_moved_files(sessions: sessionmaker[Session], storage: Storage) -> list[str]:
    """After the operator copied the files to a new place: if it holds every file the portal
    refers to, record it as the portal's (every node must then use it). Returns what is missing
    (nothing recorded) or []."""
    missing = missing_files(sessions, storage)
    if not missing:
        restamp_storage(sessions, storage)
    return missing


def already_the_portals_place(sessions: sessionmaker[Session], storage: Storage) -> bool:
    with sessions() as s:
        row = s.get(Deployment, 1)
        return row is not None and is_the_portals_place(row, storage)


def restamp_storage(sessions: sessionmaker[Session], storage: Storage) -> None:
    """After a restore or a move: the files are now where this instance keeps them."""
    with sessions.begin() as s:
        row = s.scalar(select(Deployment).where(Deployment.id == 1))
        if row is None:
            return
        row.storage = storage_place(storage)
        _stamp_folder(storage, row.storage)
