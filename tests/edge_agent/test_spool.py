import pytest

from edge_agent.spool import Spool


def test_boot_and_seq_survive_a_restart(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    assert spool.next_boot() == 1
    seqs = [spool.append_sequenced(lambda s: [("t", f"e{s}".encode(), 1)]) for _ in range(3)]
    spool.close()
    reopened = Spool(tmp_path / "spool.db")
    assert reopened.next_boot() == 2
    assert seqs == [1, 2, 3]
    assert reopened.append_sequenced(lambda s: [("t", f"e{s}".encode(), 1)]) == 4
    assert [i.payload for i in reopened.pending(10)] == [b"e1", b"e2", b"e3", b"e4"]


def test_failed_build_allocates_no_seq(tmp_path):
    spool = Spool(tmp_path / "spool.db")

    def broken(seq: int) -> list:
        raise ValueError("bad event")

    with pytest.raises(ValueError, match="bad event"):  # the builder's error reaches the caller
        spool.append_sequenced(broken)
    assert spool.depth() == 0 and spool.last_seq == 0
    assert spool.append_sequenced(lambda s: [("t", b"ok", 1)]) == 1
    assert spool.depth() == 1


def test_remove_and_pending_order(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    for n in range(5):
        spool.append("t", str(n).encode())
    items = spool.pending(10)
    spool.remove(items[1].id)
    assert [i.payload for i in spool.pending(10)] == [b"0", b"2", b"3", b"4"]
    assert [i.payload for i in spool.pending(2, after_id=items[2].id)] == [b"3", b"4"]


def test_cap_drops_oldest_and_counts(tmp_path):
    spool = Spool(tmp_path / "spool.db", max_items=10)
    for n in range(15):
        spool.append("t", str(n).encode())
    assert spool.depth() == 10
    assert spool.dropped == 5
    assert spool.pending(1)[0].payload == b"5"


def test_instance_id_is_kept_with_the_spool_and_new_when_it_is_wiped(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    first = spool.instance_id()
    assert first == spool.instance_id()
    spool.close()
    reopened = Spool(tmp_path / "spool.db")
    assert reopened.instance_id() == first and reopened.next_boot() == 1
    reopened.close()
    (tmp_path / "spool.db").unlink()
    for leftover in tmp_path.glob("spool.db-*"):
        leftover.unlink()
    wiped = Spool(tmp_path / "spool.db")
    assert wiped.instance_id() != first
    wiped.close()
