"""Which sessions are in which rooms, per namespace: a plain data structure.

Every session is in the room named by its own id, as in Socket.IO, so ``to=sid`` and
``to=room`` resolve the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Rooms"]


class Rooms:
    """A two-way index between rooms and session ids, for one namespace."""

    __slots__ = ("_members", "_rooms")

    def __init__(self) -> None:
        self._members: dict[str, set[str]] = {}
        self._rooms: dict[str, set[str]] = {}

    def enter(self, sid: str, room: str) -> None:
        """Put ``sid`` in ``room`` (idempotent)."""
        self._members.setdefault(room, set()).add(sid)
        self._rooms.setdefault(sid, set()).add(room)

    def leave(self, sid: str, room: str) -> None:
        """Take ``sid`` out of ``room`` (idempotent); empty rooms disappear."""
        members = self._members.get(room)
        if members is not None:
            members.discard(sid)
            if not members:
                del self._members[room]
        rooms = self._rooms.get(sid)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms[sid]

    def leave_all(self, sid: str) -> None:
        """Take ``sid`` out of every room, its own included."""
        for room in self._rooms.pop(sid, ()):
            members = self._members.get(room)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self._members[room]

    def close(self, room: str) -> set[str]:
        """Empty ``room``; returns the ids that were in it."""
        members = self._members.pop(room, set())
        for sid in members:
            rooms = self._rooms.get(sid)
            if rooms is not None:
                rooms.discard(room)
                if not rooms:
                    del self._rooms[sid]
        return members

    def rooms_of(self, sid: str) -> frozenset[str]:
        """The rooms ``sid`` is in."""
        return frozenset(self._rooms.get(sid, ()))

    def members(self, room: str) -> frozenset[str]:
        """The session ids in ``room``."""
        return frozenset(self._members.get(room, ()))

    def resolve(self, to: Iterable[str] | None, skip: Iterable[str]) -> set[str]:
        """The session ids in any room of ``to`` (every session when ``None``) and in
        no room of ``skip``."""
        if to is None:
            targets = set(self._rooms)
        else:
            targets = set()
            for room in to:
                targets.update(self._members.get(room, ()))
        for room in skip:
            targets.difference_update(self._members.get(room, ()))
        return targets

    def __len__(self) -> int:
        """The number of rooms, own rooms included."""
        return len(self._members)
