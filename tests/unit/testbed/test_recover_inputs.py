"""Unit checks of the pieces behind issue 11's launcher and input hardening: the capped
reader, bounded YAML/JSON, the run-folder claim, the preflight estimates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.scenario.reader import (
    MAX_DEPTH,
    InputError,
    excerpt,
    parse_json,
    parse_yaml,
    read_text,
)
from hgc.testbed.preflight import (
    PreflightError,
    check_memory,
    check_message_size,
    check_training_types,
)
from hgc.testbed.runfolder import LOCK, RunFolderError, claim_folder, release_folder

DIGITS = {"kind": "digits"}
LOGREG = {"kind": "logreg"}


def test_reader_caps_size_and_refuses_fifos_and_devices(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 2000)
    with pytest.raises(InputError, match="2000 bytes, more than the 1000"):
        read_text(big, "trace", max_bytes=1000)
    assert read_text(big, "trace", max_bytes=2000) == "x" * 2000
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):  # and does not block
        read_text(fifo, "trace")
    with pytest.raises(InputError, match="not a regular file"):
        read_text("/dev/null", "trace")
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not UTF-8"):
        read_text(binary, "trace")


def test_yaml_bounds_aliases_and_nesting_but_keeps_ordinary_aliases() -> None:
    assert parse_yaml("a: &x [1, 2]\nb: *x\n", "s") == {"a": [1, 2], "b": [1, 2]}
    bomb = "a: &a [" + ",".join(["1"] * 50) + "]\n"
    for prev, name in zip("abcd", "bcde", strict=True):
        bomb += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 50) + "]\n"
    with pytest.raises(InputError, match="alias bomb") as info:
        parse_yaml(bomb, "s")
    assert len(str(info.value)) < 200
    with pytest.raises(InputError, match=f"nested more than {MAX_DEPTH}"):
        parse_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "s")
    assert parse_yaml("[" * 10 + "]" * 10, "s") == [[[[[[[[[[]]]]]]]]]]


def test_json_bounds_nesting_and_ignores_brackets_in_strings() -> None:
    with pytest.raises(InputError, match="nested more than"):
        parse_json("[" * 100_000, "c")
    assert parse_json('{"a": "' + "[" * 100 + '"}', "c")
    with pytest.raises(InputError, match="line 1, column"):
        parse_json("{", "c")


def test_excerpt_is_short_and_one_line() -> None:
    assert excerpt("a\nb") == "a b"
    assert len(excerpt("x" * 10**6)) == 120


def test_claim_refuses_a_non_empty_folder_unless_forced_and_a_live_holder(tmp_path: Path) -> None:
    out = claim_folder(tmp_path / "out")
    assert out.is_absolute() and (out / LOCK).exists()
    with pytest.raises(RunFolderError, match="in use by a running hgc"):  # we hold it
        claim_folder(out, force=True)
    (out / "summary.json").write_text("{}")
    release_folder(out)
    assert not (out / LOCK).exists()
    with pytest.raises(RunFolderError, match="not empty .* --force"):
        claim_folder(out)
    assert claim_folder(out, force=True) == out
    release_folder(out)
    (out / LOCK).write_text("999999999:1\n")  # a stale lock of a dead launcher
    with pytest.raises(RunFolderError, match="not empty"):
        claim_folder(out)  # the lock is not counted, summary.json is


def test_training_types_name_the_field() -> None:
    with pytest.raises(PreflightError, match="training.iterations: must be int, got str 'ten'"):
        check_training_types({"iterations": "ten"})
    with pytest.raises(PreflightError, match="training.learning_rate"):
        check_training_types({"learning_rate": True})
    check_training_types({"iterations": 3, "learning_rate": 1, "target_loss": None})


def test_message_size_and_memory_estimates() -> None:
    size = check_message_size(LOGREG, DIGITS)
    assert size == 8 * (64 * 10 + 10)
    with pytest.raises(PreflightError, match=r"gradient is .* more than the message size cap"):
        check_message_size(LOGREG, DIGITS, cap=size - 1)
    need = check_memory([3, 3], LOGREG, DIGITS, available=1 << 40)
    assert 9 * (56 << 20) < need < 9 * (60 << 20)
    with pytest.raises(PreflightError, match=r"10011 processes need about 5\d\d\.\d GiB"):
        check_memory([1000] * 10, LOGREG, DIGITS, available=24 << 30)
