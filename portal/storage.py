"""Where data files live: a local folder (the instance's files/, the default) or an object
store named by an fsspec URL (PORTAL_FILES_URL, e.g. s3://bucket/prefix).

Names stored in the database are relative to the store, so an instance can move, and a
backup of one kind restores into the other. Files of one distribution sit in
<dataset name>/<sha256 prefix>/, named by content and never rewritten with other bytes: a
harvest that is killed and run again writes the same names instead of piling up copies, and
a copy of a stored file kept anywhere (the object store's local cache) never goes stale.

Whatever the store, what the portal makes from stored files itself (attribution bundles,
licensed ZIPs) and the harvest's work in progress stay on local disk: they are rebuilt on
demand or thrown away, and pyarrow, zipfile and send_file want local files.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import unicodedata
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from werkzeug.http import dump_options_header

if TYPE_CHECKING:
    from .config import Settings

# An object store's download link is valid this long: enough for the client to follow the
# redirect (the signature is checked when the transfer starts, not while it runs).
SIGNED_URL_SECONDS = 300
# Options the operator's PORTAL_FILES_OPTIONS may override. botocore still signs S3 links
# with the old signature version 2 unless told otherwise; version 4 is what every AWS region
# and the S3-compatible stores (MinIO, Ceph, OSS, COS) accept.
PROTOCOL_DEFAULTS = {"s3": {"config_kwargs": {"signature_version": "s3v4"}}}


class Storage(ABC):
    """The interface both kinds of store share. Every relative name is checked: one that
    would leave the store raises ValueError."""

    # The folder that holds the stored files when they are on local disk (nginx can send
    # them with X-Accel-Redirect); None for an object store.
    root: Path | None = None

    def distribution_dir(self, dataset_name: str, sha256: str) -> str:
        return f"{_safe(dataset_name)}/{sha256[:16]}"

    @abstractmethod
    def local_path(self, relative: str) -> Path:
        """A local file with the stored file's bytes, for readers that need one (pyarrow,
        zipfile, send_file). A missing file is a FileNotFoundError, here or on opening."""

    @abstractmethod
    def put(self, src: Path, relative: str) -> str:
        """Store the finished local file `src` under `relative` (src is gone afterwards);
        readers see the whole file or none of it."""

    @abstractmethod
    def remove_tree(self, relative_dir: str) -> None:
        """Remove a stored folder with everything in it, local copies included; never the
        whole store."""

    @abstractmethod
    def list_files(self) -> list[str]:
        """Relative names of every stored file, sorted (the backup walks them)."""

    @abstractmethod
    def scratch(self) -> Path:
        """A local folder for work in progress (the harvest's downloads and conversions)."""

    @abstractmethod
    def cache_path(self, relative: str) -> Path:
        """A local path for a file the portal derives itself and can always make again."""

    def download_url(self, relative: str, download_name: str, mimetype: str) -> str | None:
        """A short-lived URL the client fetches the bytes from directly, with this file name
        and type; None when the portal sends the file itself."""
        return None

    def check_writable(self) -> None:
        """Store a small file and remove it: raises (OSError, or the store's own error, e.g.
        a bucket that does not exist) when this store cannot be written. Run before work that
        must not stop half-way (a restore)."""
        folder = f".probe-{os.getpid()}-{secrets.token_hex(4)}"
        fd, name = tempfile.mkstemp(dir=self.scratch(), suffix=".probe")
        os.close(fd)
        try:
            self.put(Path(name), f"{folder}/probe")
        finally:
            Path(name).unlink(missing_ok=True)
        self.remove_tree(folder)


class LocalStorage(Storage):
    """A folder (the default): files are read where they lie and put() is a rename."""

    # Inside the files folder but never stored files: work in progress, derived caches, and
    # the marker naming the portal whose files these are (portal/deployment.py).
    WORK_DIRS = (".scratch", ".cache")
    MARKER = ".portal-deployment"
    root: Path

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def local_path(self, relative: str) -> Path:
        return _inside(self.root, relative)

    def put(self, src: Path, relative: str) -> str:
        """Move a finished file into place atomically (same file system: rename)."""
        dest = self.local_path(relative)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        shutil.move(str(src), tmp)
        os.replace(tmp, dest)
        return relative

    def remove_tree(self, relative_dir: str) -> None:
        p = _not_the_root(self.root, self.local_path(relative_dir))
        if p.exists():
            shutil.rmtree(p)

    def list_files(self) -> list[str]:
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and p.relative_to(self.root).parts[0] not in (*self.WORK_DIRS, self.MARKER)
        )

    def scratch(self) -> Path:
        """On the same file system as the files, so put() is a rename."""
        d = self.root / ".scratch"
        d.mkdir(exist_ok=True)
        return d

    def cache_path(self, relative: str) -> Path:
        return _inside(self.root / ".cache", relative)


class DryRunStorage(LocalStorage):
    """The files a dry run writes, in a folder of their own that is thrown away; what the portal
    already stores is read from the real storage, and nothing there is removed."""

    def __init__(self, real: Storage, folder: Path) -> None:
        super().__init__(folder)
        self.real = real

    def local_path(self, relative: str) -> Path:
        own = super().local_path(relative)
        return own if own.exists() else self.real.local_path(relative)

    def put(self, src: Path, relative: str) -> str:
        dest = super().local_path(relative)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), dest)
        return relative

    def remove_tree(self, relative_dir: str) -> None:
        pass  # a dry run removes nothing


class ObjectStorage(Storage):
    """An fsspec file system (S3 in production) with a read-through copy of each file that
    is read, under <instance>/cache/files/<relative name>. Names are content-addressed and
    never rewritten, so a copy is right for as long as it exists and the cache can be
    cleaned at any time."""

    def __init__(self, url: str, options: dict, instance_path: Path) -> None:
        import fsspec  # only an instance with an object store needs it (and its s3fs)

        self.url = url
        protocol = fsspec.core.split_protocol(url)[0]
        self.fs, base = fsspec.url_to_fs(url, **_with_defaults(options, PROTOCOL_DEFAULTS.get(protocol, {})))
        self.base = base.rstrip("/")
        self.local = Path(instance_path).resolve()
        self.copies = self.local / "cache" / "files"

    def _key(self, relative: str) -> tuple[str, Path]:
        """The object's name in the store and the path of its local copy, both checked
        through the local path, so one rule refuses escapes for both."""
        copy = _inside(self.copies, relative)
        name = copy.relative_to(self.copies).as_posix()
        return (self.base if name == "." else f"{self.base}/{name}"), copy

    def local_path(self, relative: str) -> Path:
        key, copy = self._key(relative)
        if copy.exists():
            return copy
        copy.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name per caller, renamed into place: two workers fetching the
        # same file at once both succeed, and a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=copy.parent, prefix=f"{copy.name}.", suffix=".part")
        os.close(fd)
        try:
            self.fs.get_file(key, tmp)
            os.replace(tmp, copy)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return copy

    def put(self, src: Path, relative: str) -> str:
        # An object appears whole or not at all (a PUT, or a multipart upload's completion),
        # so it needs no temporary name. The local source is not kept: the local disk holds
        # only what is read.
        key, _ = self._key(relative)
        self.fs.put_file(str(src), key)
        Path(src).unlink()
        return relative

    def remove_tree(self, relative_dir: str) -> None:
        key, copy = self._key(relative_dir)
        _not_the_root(self.copies, copy)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(key, recursive=True)
        shutil.rmtree(copy, ignore_errors=True)  # no byte of it stays on the portal side either

    def list_files(self) -> list[str]:
        self.fs.invalidate_cache(self.base)  # another process (the harvest) may have written since
        prefix = f"{self.base}/"
        return sorted(key[len(prefix) :] for key in self.fs.find(self.base) if key.startswith(prefix))

    def scratch(self) -> Path:
        d = self.local / "scratch"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def cache_path(self, relative: str) -> Path:
        return _inside(self.local / "cache", relative)

    def download_url(self, relative: str, download_name: str, mimetype: str) -> str | None:
        key, _ = self._key(relative)
        try:
            # S3 puts these into the response (get_object's ResponseContent* parameters),
            # so the browser saves the file under its Chinese name, as from the portal.
            return self.fs.sign(
                key,
                expiration=SIGNED_URL_SECONDS,
                ResponseContentDisposition=attachment_header(download_name),
                ResponseContentType=mimetype,
            )
        except NotImplementedError:  # a file system that cannot sign: the portal sends it
            return None


def open_storage(settings: Settings) -> Storage:
    if not settings.files_url:
        return LocalStorage(settings.files_path)
    return ObjectStorage(settings.files_url, settings.files_options, settings.instance_path)


def attachment_header(name: str, ascii_name: str | None = None) -> str:
    """Content-Disposition for a download: the real name as RFC 5987 filename*, and for old
    clients an ASCII filename — `ascii_name` (e.g. the dataset's identifier and version)
    where the real name is Chinese, since stripping its characters leaves "-2026-11-29.csv"."""
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        simple = ascii_name or _ascii_remains(name)
        return dump_options_header(
            "attachment", {"filename": simple, "filename*": "UTF-8''" + quote(name, safe="!#$&+-.^_`|~")}
        )
    return dump_options_header("attachment", {"filename": name})


def _ascii_remains(name: str) -> str:
    """What is left of a Chinese name in ASCII, without the separators that joined the Chinese
    words to the rest ("决定书-SQ2026….pdf" → "SQ2026….pdf", not "-SQ2026….pdf")."""
    stem, dot, ext = name.rpartition(".")
    kept = unicodedata.normalize("NFKD", stem if dot else name).encode("ascii", "ignore").decode("ascii")
    kept = re.sub(r"[-_ .]{2,}", "-", kept).strip("-_ .") or "download"
    return f"{kept}.{ext}" if dot else kept


def _with_defaults(options: dict, defaults: dict) -> dict:
    """options over defaults, one level of nested dicts merged (config_kwargs and the like)."""
    merged = {**defaults, **options}
    for key, value in defaults.items():
        if isinstance(value, dict) and isinstance(options.get(key), dict):
            merged[key] = {**value, **options[key]}
    return merged


def _inside(root: Path, relative: str) -> Path:
    """root/relative (root an absolute, resolved path), refusing anything that would leave root."""
    p = (root / relative).resolve()
    if p != root and root not in p.parents:
        raise ValueError(f"path outside storage: {relative!r}")
    return p


def _not_the_root(root: Path, p: Path) -> Path:
    """No name removes the whole store."""
    if p == root:
        raise ValueError("refusing to remove the whole storage")
    return p


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return cleaned.strip(".") or "_"
