"""The `portal` command as a user runs it: real processes, real files, real database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import create_engine, text

from tests.catalogs import entry, write_catalog, write_csv


def portal(settings, *args, **kw):
    env = {
        **os.environ,
        "PORTAL_INSTANCE": str(settings.instance_path),
        "PORTAL_DATABASE_URL": settings.database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def test_harvest_json_report_and_exit_code(settings, tmp_path):
    write_csv(tmp_path / "d.csv", ["a"], [["1"]])
    cat = write_catalog(
        tmp_path / "c.csv",
        [
            entry("371502-ZFJ-0001", "甲", file="d.csv"),
            entry("371502-ZFJ-0002", "乙", "有条件开放", basis=""),
        ],
    )
    done = portal(settings, "harvest", "--catalog", str(cat), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"] == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "withdrawn": 0,
        "held": 1,
        "failed": 0,
    }
    created, held = report["entries"]
    assert created == {
        "source_id": "371502-ZFJ-0001",
        "open_class": "unconditional",
        "action": "created",
        "reason": None,
    }
    assert {k: held[k] for k in ("source_id", "open_class", "action")} == {
        "source_id": "371502-ZFJ-0002",
        "open_class": "conditional",
        "action": "held",
    }
    assert "法律" in held["reason"]
    # each reason with its code, what was found and what fixes it
    [why] = held["details"]
    assert why["code"] == "no_basis" and "未填写法律依据" in why["what"] and "法律依据" in why["fix"]


def test_exit_code_is_non_zero_only_when_the_source_cannot_be_read(settings, tmp_path):
    cat = write_catalog(tmp_path / "c.csv", [entry("371502-ZFJ-0001", "甲", file="missing.csv")])
    broken_entry = portal(settings, "harvest", "--catalog", str(cat))
    assert broken_entry.returncode == 0 and "failed" in broken_entry.stdout
    missing_source = portal(settings, "harvest", "--catalog", str(tmp_path / "nope.xlsx"))
    assert missing_source.returncode == 1 and "不存在" in missing_source.stderr
    dead_ckan = portal(settings, "harvest", "--ckan", "http://127.0.0.1:9", "--json")
    assert dead_ckan.returncode == 1 and "CKAN" in json.loads(dead_ckan.stdout)["error"]


def test_a_harvest_killed_half_way_leaves_nothing_half_published(settings, tmp_path):
    rows = [[str(i), f"名称{i}", "古楼街道"] for i in range(8_000)]
    entries = []
    for i in range(40):
        write_csv(tmp_path / f"d{i}.csv", ["id", "name", "street"], rows)
        entries.append(entry(f"371502-ZFJ-{i:04d}", f"数据{i}", file=f"d{i}.csv"))
    cat = write_catalog(tmp_path / "c.csv", entries)
    env = {
        **os.environ,
        "PORTAL_INSTANCE": str(settings.instance_path),
        "PORTAL_DATABASE_URL": settings.database_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "harvest", "--catalog", str(cat)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = create_engine(settings.database_url)
    count = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            with engine.connect() as conn:
                count = conn.execute(text("SELECT count(*) FROM datasets")).scalar()
        except Exception:  # tables not made yet
            count = 0
        if count >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 5 <= count < 40, "the harvest should have been killed half-way"
    with engine.connect() as conn:
        # every dataset that exists is whole: published with its converted table
        rows = conn.execute(
            text(
                "SELECT d.name, d.status, count(t.id) FROM datasets d LEFT JOIN distributions x ON x.dataset_id = d.id "
                "LEFT JOIN data_tables t ON t.distribution_id = x.id GROUP BY d.name, d.status"
            )
        ).all()
    assert rows and all(status == "published" and tables == 1 for _, status, tables in rows)
    done = portal(settings, "harvest", "--catalog", str(cat), "--json")
    report = json.loads(done.stdout)
    assert report["counts"]["created"] == 40 - len(rows) and report["counts"]["failed"] == 0
    assert report["counts"]["unchanged"] == len(rows)
    engine.dispose()
