"""Per-connection limits: the bounded outgoing queue, calls in flight, the rate of
incoming events; and the counters of what those limits did.

Sans-I/O: plain values and arithmetic on a clock the caller passes in. The connection
(:mod:`eventsock.session`) applies them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Backpressure", "LinkLimits", "RateLimit", "Stats", "TokenBucket"]


@dataclass(frozen=True, slots=True)
class Backpressure:
    """How much one connection may have waiting to be sent, and what happens beyond.

    Frames wait in a connection's queue only while its transport is full (the peer
    reads slower than it is sent to). The queue holds at most ``max_packets`` frames
    and ``max_bytes`` bytes (a single frame larger than ``max_bytes`` is still taken
    when the queue is empty). When it is full:

    * an ``await session.emit()``, ``await session.call()`` or a client's ``emit()``
      or ``call()`` waits up to ``send_timeout`` seconds for room, then the peer is
      disconnected with the reason ``"slow consumer"`` and the call raises
      :class:`~eventsock.ConnectionClosed`;
    * a ``volatile`` event is dropped for that peer (counted in
      :attr:`Stats.dropped`);
    * a send that cannot wait (a broadcast, ``server.emit()``, an ack, a stream item)
      never holds the others up: with ``overflow="disconnect"`` (the default) the slow
      peer is disconnected ("slow consumer"), and with ``overflow="drop"`` that frame
      is dropped for it (counted in :attr:`Stats.dropped`).

    A disconnected slow consumer loses nothing silently: its disconnect handler runs
    with the reason, and with connection state recovery on, it gets the events it
    missed when it reconnects.

    Raises:
        ValueError: a bound is not positive, or ``overflow`` is unknown.
    """

    max_packets: int = 1024
    max_bytes: int = 4 << 20
    send_timeout: float = 10.0
    overflow: Literal["disconnect", "drop"] = "disconnect"

    def __post_init__(self) -> None:
        if self.max_packets < 1 or self.max_bytes < 1:
            raise ValueError("max_packets and max_bytes must be at least 1")
        if not self.send_timeout > 0:
            raise ValueError("send_timeout must be positive")
        if self.overflow not in ("disconnect", "drop"):
            raise ValueError(f"overflow must be 'disconnect' or 'drop', not {self.overflow!r}")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket for a connection's incoming events: ``rate`` events per second
    on average, in bursts of up to ``burst``.

    An event over the limit is not handled: a call is answered with a
    :class:`~eventsock.RateLimited` error (``retry_after`` seconds in its data), a
    plain event is dropped; both are counted in :attr:`Stats.rate_limited`. A peer
    that goes on sending a further ``burst`` events over the limit is disconnected
    with the reason ``"rate limit exceeded"`` (close code 1008).

    Raises:
        ValueError: ``rate`` or ``burst`` is not positive.
    """

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)) or self.burst < 1:
            raise ValueError("rate must be a positive number and burst at least 1")


class TokenBucket:
    """The state of one connection's :class:`RateLimit`."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.rate = limit.rate
        self.burst = float(limit.burst)
        self.tokens = self.burst
        self.stamp = now

    def take(self, now: float) -> bool:
        """Take one token at time ``now``; ``False`` when there was none (the debt
        grows by one, down to ``-burst``: see :attr:`exhausted`)."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = max(-self.burst, tokens - 1.0)
        return False

    @property
    def exhausted(self) -> bool:
        """Whether a whole further burst was refused: the peer ignores the limit."""
        return self.tokens <= -self.burst

    def retry_after(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1.0 - self.tokens) / self.rate)


@dataclass(slots=True)
class Stats:
    """What the limits did, counted since the server (or client) was made.

    Read it from :attr:`Server.stats <eventsock.Server.stats>` or
    :attr:`Client.stats <eventsock.Client.stats>`.
    """

    #: Frames dropped because a peer's queue was full (volatile events, or any frame
    #: with ``Backpressure(overflow="drop")``).
    dropped: int = 0
    #: Peers disconnected with the reason "slow consumer".
    slow_consumers: int = 0
    #: Incoming events refused by the rate limit.
    rate_limited: int = 0
    #: Peers disconnected with the reason "rate limit exceeded".
    rate_limit_disconnects: int = 0
    #: Incoming calls refused because too many were already being handled.
    calls_refused: int = 0


@dataclass(frozen=True, slots=True)
class LinkLimits:
    """Every limit one connection applies, shared by the connections of one owner."""

    backpressure: Backpressure = field(default_factory=Backpressure)
    #: Calls this side may have waiting for their acks on one connection.
    max_pending_calls: int = 1024
    #: Calls from the peer whose handlers may be running at once on one connection.
    max_incoming_calls: int = 256
    rate_limit: RateLimit | None = None

    def __post_init__(self) -> None:
        if self.max_pending_calls < 1 or self.max_incoming_calls < 1:
            raise ValueError("max_pending_calls and max_incoming_calls must be at least 1")
