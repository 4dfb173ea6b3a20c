"""The pure parts of resilience: the backoff schedule, the replay log, the store."""

from __future__ import annotations

import pytest

from eventsock.backoff import Backoff
from eventsock.recovery import Recovery, ReplayLog, SessionStore, StoredSession


def test_backoff_defaults_follow_socket_io_client() -> None:
    # r = 0.0: even first decimal, so the deviation is subtracted (and is 0)
    backoff = Backoff(rng=lambda: 0.0)
    assert [backoff.next() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 1.0


@pytest.mark.parametrize(
    ("r", "expected"),
    [
        # r = 0.25: first decimal 2 (even) -> minus 0.25 * 0.5 = 12.5 %
        (0.25, [0.875, 1.75, 3.5, 5.0]),
        # r = 0.35: first decimal 3 (odd) -> plus 0.35 * 0.5 = 17.5 %
        (0.35, [1.175, 2.35, 4.7, 5.0]),
        # r = 0.99: odd -> plus 49.5 %, capped at the maximum
        (0.99, [1.495, 2.99, 5.0, 5.0]),
    ],
)
def test_backoff_jitter_is_proportional(r: float, expected: list[float]) -> None:
    backoff = Backoff(1.0, 5.0, 0.5, rng=lambda: r)
    assert [backoff.next() for _ in expected] == pytest.approx(expected)


def test_backoff_ranges_with_real_randomness() -> None:
    bounds = [(0.5, 1.5), (1.0, 3.0), (2.0, 5.0), (4.0, 5.0), (4.0, 5.0)]
    for _ in range(200):
        backoff = Backoff()
        for low, high in bounds:
            assert low <= backoff.next() <= high


def test_backoff_does_not_overflow() -> None:
    backoff = Backoff(0.1, 2.0, 0.0)
    for _ in range(2000):
        delay = backoff.next()
    assert delay == 2.0


def test_backoff_validates() -> None:
    with pytest.raises(ValueError, match="delay"):
        Backoff(2.0, 1.0)
    with pytest.raises(ValueError, match="randomization"):
        Backoff(randomization_factor=2)


def fill(log: ReplayLog, count: int, now: float = 0.0, **kwargs: object) -> list[str]:
    offsets = []
    for i in range(count):
        seq, offset = log.next_offset()
        log.append(seq, "/", f"frame{i}".encode(), None, frozenset(), now, **kwargs)  # type: ignore[arg-type]
        offsets.append(offset)
    return offsets


def test_replay_log_replays_after_an_offset_in_order() -> None:
    log = ReplayLog(Recovery())
    offsets = fill(log, 5)
    after = log.position(offsets[1])
    assert after is not None
    assert list(log.replay("/", after, log.mark, frozenset({"x"}))) == [
        b"frame2",
        b"frame3",
        b"frame4",
    ]
    # up to a mark only
    assert list(log.replay("/", after, after + 1, frozenset({"x"}))) == [b"frame2"]


def test_replay_log_filters_by_namespace_rooms_and_skip() -> None:
    log = ReplayLog(Recovery())
    entries = [
        ("/", None, ()),  # the whole namespace
        ("/other", None, ()),  # another namespace
        ("/", ("red",), ()),  # a room the session is in
        ("/", ("blue",), ()),  # a room it is not in
        ("/", None, ("red",)),  # skips a room it is in
        ("/", ("sid1",), ()),  # to the session itself
    ]
    for i, (namespace, to, skip) in enumerate(entries):
        seq, _ = log.next_offset()
        log.append(
            seq,
            namespace,
            bytes([i]),
            None if to is None else frozenset(to),
            frozenset(skip),
            0.0,
        )
    replayed = list(log.replay("/", 0, log.mark, frozenset({"sid1", "red"})))
    assert replayed == [b"\x00", b"\x02", b"\x05"]


def test_replay_log_is_bounded_in_count_bytes_and_time() -> None:
    log = ReplayLog(Recovery(max_events=3))
    offsets = fill(log, 5)
    assert len(log) == 3
    # the entry after offsets[0] is gone: no recovery from there
    assert log.position(offsets[0]) is None
    # offsets[1]'s own entry is gone, but nothing after it: a recovery still works
    assert log.position(offsets[1]) == 2
    assert log.position(offsets[2]) == 3

    log = ReplayLog(Recovery(max_bytes=20))
    fill(log, 10)  # 6 bytes each
    assert log.size <= 20
    assert len(log) == 3

    log = ReplayLog(Recovery(max_disconnection=10))
    fill(log, 2, now=0.0)
    fill(log, 2, now=5.0)
    log.expire(12.0)
    assert len(log) == 2
    log.expire(16.0)
    assert len(log) == 0


def test_replay_log_refuses_foreign_and_future_offsets() -> None:
    log = ReplayLog(Recovery())
    fill(log, 2)
    other = ReplayLog(Recovery())
    assert log.position(other.offset(1)) is None or other.prefix == log.prefix
    assert log.position(log.offset(99)) is None
    assert log.position("not an offset") is None
    assert log.position(log.prefix + "zz") is None
    assert log.position(log.offset(0)) == 0  # "before everything" is a position too


def test_session_store_keeps_sessions_for_the_window() -> None:
    store = SessionStore(Recovery(max_disconnection=10))
    session = StoredSession("sid", "pid", "/", frozenset({"room"}), {"k": 1}, 0)
    store.keep(session, now=100.0)
    assert store.take("pid", "/other", now=101.0) is None  # wrong namespace
    assert store.take("pid", "/", now=105.0) is session
    assert store.take("pid", "/", now=105.0) is None  # taken once
    store.keep(session, now=100.0)
    assert store.take("pid", "/", now=111.0) is None  # expired
    assert len(store) == 0


def test_recovery_options_validate() -> None:
    with pytest.raises(ValueError, match="positive"):
        Recovery(max_disconnection=0)


def test_client_options_set_its_schedule() -> None:
    import eventsock

    client = eventsock.Client(
        reconnection_delay=2.0, reconnection_delay_max=10.0, randomization_factor=0.5
    )
    client.backoff._rng = lambda: 0.25  # even first decimal: minus 12.5 %
    assert [client.backoff.next() for _ in range(4)] == pytest.approx([1.75, 3.5, 7.0, 10.0])
    with pytest.raises(ValueError, match="buffer_overflow"):
        eventsock.Client(buffer_overflow="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reconnection_attempts"):
        eventsock.Client(reconnection_attempts=-1)
