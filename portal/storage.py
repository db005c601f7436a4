"""Where data files live: a folder (the instance's files/ by default).

Paths stored in the database are relative to this folder, so an instance can move.
Files of one distribution sit in <dataset name>/<sha256 prefix>/, named by content, so a
harvest that is killed and run again rewrites the same names instead of piling up copies.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path


class Storage:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, relative: str) -> Path:
        """The absolute path of a stored file; refuses anything that would leave the root."""
        p = (self.root / relative).resolve()
        if p != self.root and self.root not in p.parents:
            raise ValueError(f"path outside storage: {relative!r}")
        return p

    def distribution_dir(self, dataset_name: str, sha256: str) -> str:
        return f"{_safe(dataset_name)}/{sha256[:16]}"

    def put(self, src: Path, relative: str) -> str:
        """Move a finished file into place atomically (same file system: rename)."""
        dest = self.path(relative)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        shutil.move(str(src), tmp)
        os.replace(tmp, dest)
        return relative

    def scratch(self) -> Path:
        """A folder for work in progress, on the same file system so put() is a rename."""
        d = self.root / ".scratch"
        d.mkdir(exist_ok=True)
        return d

    def remove_tree(self, relative_dir: str) -> None:
        p = self.path(relative_dir)
        if p.exists():
            shutil.rmtree(p)


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return cleaned.strip(".") or "_"
