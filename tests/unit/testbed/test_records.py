"""The one reader of the master's record file (``hgc.testbed.records.read_records``), used by
the launcher, both local clusters and the tests: a half-written LAST line is a record still
being written (or a master killed mid-write) and is skipped; a bad line anywhere else is an
error that names the file and the line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from hgc.testbed.records import RecordError, parse_records, read_records


def rec(iteration: int) -> dict[str, Any]:
    return {"scheme": "hgc", "iteration": iteration, "ok": True, "duration_s": 0.5}


def line(iteration: int) -> str:
    return json.dumps(rec(iteration)) + "\n"


def test_missing_file_has_no_records_yet(tmp_path: Path) -> None:
    assert read_records(tmp_path / "none.jsonl") == []


def test_complete_file_reads_every_record(tmp_path: Path) -> None:
    path = tmp_path / "record.jsonl"
    path.write_text(line(0) + line(1) + "\n" + line(2))  # a blank line is harmless
    assert [r["iteration"] for r in read_records(path)] == [0, 1, 2]


@pytest.mark.parametrize("cut", [1, 10, 25, -1], ids=lambda c: f"cut{c}")
def test_half_written_last_line_is_ignored(tmp_path: Path, cut: int) -> None:
    """Every prefix of the record being written: never an error, never a record."""
    path = tmp_path / "record.jsonl"
    partial = line(2)[:cut] if cut > 0 else line(2)[:-2]  # -1: all but '}' and newline
    path.write_text(line(0) + line(1) + partial)
    assert [r["iteration"] for r in read_records(path)] == [0, 1]


def test_every_prefix_of_a_write_reads_cleanly(tmp_path: Path) -> None:
    """A reader racing the writer sees any byte prefix of the file; each one parses to the
    records completed so far (the last one possibly already complete without its newline)."""
    full = line(0) + line(1)
    path = tmp_path / "record.jsonl"
    for n in range(len(full) + 1):
        path.write_bytes(full.encode()[:n])
        got = [r["iteration"] for r in read_records(path)]
        complete = full[:n].count("\n") + (1 if full[:n].endswith("}") else 0)
        assert got == list(range(complete)), (n, full[:n])


def test_torn_last_line_inside_a_multibyte_character_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "record.jsonl"
    torn = json.dumps({**rec(1), "error": "µ"}, ensure_ascii=False).encode()
    cut = torn.index("µ".encode()) + 1  # half of the two-byte character
    path.write_bytes(line(0).encode() + torn[:cut])
    assert [r["iteration"] for r in read_records(path)] == [0]


def test_corrupt_line_in_the_middle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "record.jsonl"
    path.write_text(line(0) + '{"scheme": "hg\n' + line(2))
    with pytest.raises(RecordError, match=r"record\.jsonl:2: not JSON"):
        read_records(path)


def test_corrupt_complete_last_line_is_an_error_not_a_torn_write(tmp_path: Path) -> None:
    """The master ends every record with a newline: a terminated bad line is corruption."""
    path = tmp_path / "record.jsonl"
    path.write_text(line(0) + "garbage\n")
    with pytest.raises(RecordError, match=r"record\.jsonl:2: not JSON"):
        read_records(path)


def test_complete_but_invalid_record_is_an_error_wherever_it_is(tmp_path: Path) -> None:
    path = tmp_path / "record.jsonl"
    path.write_text(line(0) + '{"scheme": "hgc"}\n' + line(2))
    with pytest.raises(RecordError, match=r"record\.jsonl:2: missing field 'iteration'"):
        read_records(path)
    path.write_text(line(0) + '{"scheme": "hgc"}')  # whole JSON, unterminated: not torn
    with pytest.raises(RecordError, match=r"record\.jsonl:2: missing field 'iteration'"):
        read_records(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(RecordError, match=r"record\.jsonl:1: a record must be a JSON object"):
        read_records(path)


def test_in_memory_record_uses_the_same_rules() -> None:
    """The in-process cluster's master writes to a StringIO; its records() reads it so."""
    buf = io.StringIO()
    buf.write(line(0) + line(1)[:7])
    assert [r["iteration"] for r in parse_records(buf.getvalue(), "mem")] == [0]
    with pytest.raises(RecordError, match="mem:1: not JSON"):
        parse_records("nope\n" + line(1), "mem")


def test_there_is_one_record_reader() -> None:
    """No second ``read_records`` anywhere in the project (there used to be three)."""
    import hgc.cluster

    assert hgc.cluster.read_records is read_records
    root = Path(__file__).resolve().parents[3]
    defining = sorted(
        str(p.relative_to(root))
        for folder in ("common", "services", "hgc", "bench", "tests", "scripts")
        for p in (root / folder).rglob("*.py")
        if "def read_records" + "(" in p.read_text()
    )
    assert defining == ["hgc/testbed/records.py"]
