"""id_ranges: a table's ids split into the ranges a mapped send runs over, read from a
real SQLite database through its Airflow connection."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.partitions import id_ranges


@pytest.fixture
def audience(tmp_path, monkeypatch):
    path = tmp_path / "audience.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE audience (id INTEGER PRIMARY KEY, to_phone TEXT)")
        db.execute("CREATE TABLE empty (id INTEGER PRIMARY KEY)")
        db.executemany(
            "INSERT INTO audience VALUES (?, '+380991234567')", [(n,) for n in range(5, 106)]
        )
    monkeypatch.setenv(
        "AIRFLOW_CONN_AUDIENCE_DB", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    return path


def _covered(ranges: list[dict[str, int]]) -> list[int]:
    return [n for r in ranges for n in range(r["low"], r["high"] + 1)]


@pytest.mark.parametrize("parts", [1, 3, 4, 7, 101, 200])
def test_parts_cover_every_id_once(audience, parts):
    ranges = id_ranges("audience_db", "audience", parts=parts)
    assert _covered(ranges) == list(range(5, 106))  # 101 ids, each once, in order
    assert len(ranges) <= parts
    sizes = [r["high"] - r["low"] + 1 for r in ranges]
    assert all(size == sizes[0] for size in sizes[:-1]) and sizes[-1] <= sizes[0]
    assert len(ranges) == min(parts, 101) or sizes[0] * (parts - 1) >= 101


def test_size_gives_ranges_of_that_many_ids(audience):
    ranges = id_ranges("audience_db", "audience", size=40)
    assert ranges == [{"low": 5, "high": 44}, {"low": 45, "high": 84}, {"low": 85, "high": 105}]


def test_an_empty_table_gives_no_ranges(audience):
    assert id_ranges("audience_db", "empty", parts=4) == []


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({}, "give one of parts= or size="),
        ({"parts": 2, "size": 10}, "give one of parts= or size="),
        ({"parts": 0}, "parts=0: must be a whole number of 1 or more"),
        ({"size": 2.5}, "size=2.5: must be a whole number of 1 or more"),
        ({"parts": 2, "column": "id; DROP TABLE audience"}, "column='id; DROP TABLE audience'"),
    ],
)
def test_bad_arguments_are_named(audience, kwargs, says):
    with pytest.raises(CascadeError, match=re.escape(says)):
        id_ranges("audience_db", "audience", **kwargs)
    with sqlite3.connect(audience) as db:  # nothing ran against the table
        assert db.execute("SELECT COUNT(*) FROM audience").fetchone() == (101,)


def test_a_table_name_that_is_not_a_plain_name(audience):
    with pytest.raises(CascadeError, match=r"table='audience--': must be a plain SQL name"):
        id_ranges("audience_db", "audience--", parts=2)
