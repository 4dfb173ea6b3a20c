"""Connection state recovery, as socket.io 4.6+ does it: a plain data structure.

With recovery on, every event the server emits without an ack gets an *offset*, a short
string appended as its last argument, and events that are not volatile are kept in a
:class:`ReplayLog`. A session that ends for a recoverable reason is kept in the
:class:`SessionStore` with its rooms and data. A client that reconnects within the window
presents its private id (``pid``) and the last offset it received; it gets its session
back and the events it missed, in order, before the CONNECT reply.

Time is passed in (``now``), so the data structures can be tested without waiting.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["RECOVERABLE_REASONS", "Recovery", "ReplayLog", "SessionStore", "StoredSession"]

#: Disconnect reasons after which a session is kept for recovery.
RECOVERABLE_REASONS: Final = frozenset(
    {"transport close", "transport error", "ping timeout", "server shutting down"}
)


@dataclass(frozen=True, slots=True)
class Recovery:
    """Options of connection state recovery (``Server(recovery=Recovery())``).

    Attributes:
        max_disconnection: seconds a disconnected session is kept, and how long logged
            events are kept for it.
        skip_connect_handler: a recovered session skips the ``connect`` handler (its
            rooms and data are restored as they were), as socket.io skips middlewares by
            default. With ``False`` the handler runs, and ``session.recovered`` tells it.
        max_events: the most events the replay log keeps.
        max_bytes: the most encoded bytes the replay log keeps.
    """

    max_disconnection: float = 120.0
    skip_connect_handler: bool = True
    max_events: int = 10_000
    max_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_disconnection <= 0 or self.max_events < 1 or self.max_bytes < 1:
            raise ValueError("recovery limits must be positive")


@dataclass(slots=True)
class _Entry:
    seq: int
    namespace: str
    frame: bytes
    to: frozenset[str] | None
    skip: frozenset[str]
    at: float


class ReplayLog:
    """The events emitted with offsets, bounded in count, bytes and age.

    Offsets are this log's prefix followed by a sequence number in hex, so an offset
    names a position even after its own entry has expired: a client that received
    nothing for a while can still recover, as long as nothing *after* its offset has
    been dropped.
    """

    def __init__(self, options: Recovery) -> None:
        self.options = options
        self.prefix = secrets.token_hex(2)
        self._entries: deque[_Entry] = deque()
        self._seq = 0  # the last sequence number handed out
        self._dropped_upto = 0  # every entry with seq <= this is gone
        self._bytes = 0

    def offset(self, seq: int) -> str:
        """The offset string for a sequence number."""
        return f"{self.prefix}{seq:x}"

    @property
    def mark(self) -> int:
        """The sequence number of the latest event (0 before any)."""
        return self._seq

    def next_offset(self) -> tuple[int, str]:
        """Reserve the next position; returns its sequence number and offset."""
        self._seq += 1
        return self._seq, self.offset(self._seq)

    def append(
        self,
        seq: int,
        namespace: str,
        frame: bytes,
        to: frozenset[str] | None,
        skip: frozenset[str],
        now: float,
    ) -> None:
        """Keep an encoded event for replay (``to=None``: the whole namespace)."""
        self._entries.append(_Entry(seq, namespace, frame, to, skip, now))
        self._bytes += len(frame)
        self.expire(now)

    def expire(self, now: float) -> None:
        """Drop entries past the window, the count or the byte budget."""
        entries, options = self._entries, self.options
        horizon = now - options.max_disconnection
        while entries and (
            entries[0].at < horizon
            or len(entries) > options.max_events
            or self._bytes > options.max_bytes
        ):
            dropped = entries.popleft()
            self._bytes -= len(dropped.frame)
            self._dropped_upto = dropped.seq

    def position(self, offset: str) -> int | None:
        """The sequence number an offset names, or ``None`` if it is not one of ours
        or if events after it have been dropped (a replay would have a gap)."""
        if not offset.startswith(self.prefix):
            return None
        try:
            seq = int(offset[len(self.prefix) :], 16)
        except ValueError:
            return None
        if not self._dropped_upto <= seq <= self._seq:
            return None
        return seq

    def replay(
        self, namespace: str, after: int, upto: int, rooms: frozenset[str]
    ) -> Iterator[bytes]:
        """The frames after ``after`` up to ``upto`` that a session in ``rooms`` would
        have received, in order."""
        for entry in self._entries:
            if entry.seq <= after:
                continue
            if entry.seq > upto:
                break
            if entry.namespace != namespace:
                continue
            if entry.to is not None and entry.to.isdisjoint(rooms):
                continue
            if not entry.skip.isdisjoint(rooms):
                continue
            yield entry.frame

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """The encoded bytes held."""
        return self._bytes


@dataclass(slots=True)
class StoredSession:
    """What is kept of a disconnected session until it recovers or expires."""

    sid: str
    pid: str
    namespace: str
    rooms: frozenset[str]
    data: dict[str, Any]
    start: int  # replay from here when the client has no offset yet
    disconnected_at: float = field(default=0.0)


class SessionStore:
    """Disconnected sessions by ``pid``, dropped after ``max_disconnection``."""

    def __init__(self, options: Recovery) -> None:
        self.options = options
        self._sessions: OrderedDict[str, StoredSession] = OrderedDict()

    def keep(self, session: StoredSession, now: float) -> None:
        """Keep a session that just disconnected."""
        self.expire(now)
        session.disconnected_at = now
        self._sessions[session.pid] = session
        self._sessions.move_to_end(session.pid)

    def take(self, pid: str, namespace: str, now: float) -> StoredSession | None:
        """Remove and return the session with this ``pid`` on ``namespace``, if it is
        still within the window."""
        self.expire(now)
        session = self._sessions.get(pid)
        if session is None or session.namespace != namespace:
            return None
        del self._sessions[pid]
        return session

    def expire(self, now: float) -> None:
        """Drop the sessions disconnected longer than the window ago."""
        horizon = now - self.options.max_disconnection
        sessions = self._sessions
        while sessions:
            oldest = next(iter(sessions.values()))
            if oldest.disconnected_at >= horizon:
                break
            sessions.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sessions)
