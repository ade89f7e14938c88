"""A full data disk (found by the soak, bench/soak.py): the spool refuses what it cannot write and goes on.

The disk is "filled" with a file-size limit on this process (RLIMIT_FSIZE; Python ignores SIGXFSZ, so a
write past the limit fails with EFBIG and SQLite reports an I/O error), lifted again in ``finally``.
"""

from __future__ import annotations

import resource
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_agent import spool as spool_module
from edge_agent.spool import Spool


@contextmanager
def disk_full() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def event(seq: int) -> list[tuple[str, bytes, int]]:
    return [("farm/events", b"e%d" % seq + b"x" * 8000, 1)]


def test_a_full_disk_refuses_events_without_a_seq_gap_and_writes_again_when_freed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.next_boot()
    assert spool.append_sequenced(event) == 1
    with disk_full():
        assert spool.append_sequenced(event) is None  # refused, no exception into the camera thread
        assert spool.append("farm/alerts", b"a" * 8000) is False
        assert spool.append_sequenced(event) is None
    assert (spool.refused, spool.dropped, spool.last_seq) == (3, 3, 1)
    assert spool.append_sequenced(event) == 2  # no seq was used up by the refused events: no gap
    assert [item.payload[:2] for item in spool.pending(10)] == [b"e1", b"e2"]


def test_an_acknowledged_row_that_cannot_be_deleted_is_not_sent_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    for _ in range(40):  # enough rows that deleting one must write the WAL past the limit
        spool.append_sequenced(event)
    first = spool.pending(1)[0]
    with disk_full():
        spool.remove(first.id)  # the publisher's PUBACK callback: must not raise into the MQTT thread
        assert first.id not in [item.id for item in spool.pending(100)]
        assert spool.depth() == 39
    spool.remove(spool.pending(1)[0].id)  # room again: the hidden row is deleted too
    assert spool.depth() == 38
    spool.close()
    assert Spool(tmp_path / "spool.db").depth() == 38  # both deletes reached the file


def test_next_boot_waits_for_room_instead_of_failing(tmp_path: Path, monkeypatch) -> None:
    spool = Spool(tmp_path / "spool.db")
    for _ in range(40):
        spool.append_sequenced(event)
    monkeypatch.setattr(spool_module, "DISK_FULL_RETRY_S", (0.05, 0.1))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    boot: list[int] = []
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        worker = threading.Thread(target=lambda: boot.append(spool.next_boot()))
        worker.start()
        worker.join(0.5)
        assert worker.is_alive() and not boot  # still waiting for room, not failed
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # the disk is freed
    worker.join(10)
    assert boot == [1]
