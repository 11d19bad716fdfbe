"""Host choice and id allocation, without a database."""

from decimal import Decimal as D

from contexts.placement import Need, Room, choose_host, explain_no_room, first_free_id

NEED = Need(cpus=D("1"), memory_mib=1024, disk_gib=20)


def test_picks_the_host_with_most_memory_left():
    rooms = [Room("a", D("8"), 2048, 100), Room("b", D("8"), 4096, 100), Room("c", D("8"), 3000, 100)]
    assert choose_host(rooms, NEED).name == "b"


def test_skips_hosts_short_of_any_resource():
    rooms = [
        Room("cpu", D("0.5"), 9999, 999),
        Room("mem", D("8"), 512, 999),
        Room("disk", D("8"), 9999, 10),
        Room("ok", D("1"), 1024, 20),
    ]
    assert choose_host(rooms, NEED).name == "ok"


def test_ties_are_broken_by_cpu_then_name():
    assert choose_host([Room("b", D("2"), 2048, 50), Room("a", D("2"), 2048, 50)], NEED).name == "a"
    assert choose_host([Room("a", D("2"), 2048, 50), Room("b", D("3"), 2048, 50)], NEED).name == "b"


def test_no_room_is_explained_per_host():
    rooms = [Room("n1", D("0.5"), 512, 100)]
    assert choose_host(rooms, NEED) is None
    message = explain_no_room(rooms, NEED)
    assert "n1: 0.5 CPUs free of 1 needed, 512 MiB memory free of 1024 needed" in message
    assert "has this template" in explain_no_room([], NEED)


def test_first_free_id_fills_gaps():
    assert first_free_id(set(), 1000, 1002) == 1000
    assert first_free_id({1000, 1002}, 1000, 1005) == 1001
    assert first_free_id({1000, 1001, 1002}, 1000, 1002) is None
