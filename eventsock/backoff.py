"""Reconnection delays: exponential backoff with proportional jitter.

The same schedule as socket.io-client (its ``backo2``): the n-th delay (n from 0) is
``delay * 2**n``, moved up or down by a random fraction of itself of at most
``randomization_factor``, then capped at ``delay_max``. With the defaults (1 s, 5 s,
0.5) the first delays fall in 0.5-1.5 s, 1-3 s, 2-5 s, then at most 5 s.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]

# 2**60 seconds is past any cap; larger exponents would overflow a float for nothing.
_MAX_EXPONENT = 60


class Backoff:
    """The delays before successive reconnection attempts.

    Args:
        delay: the first delay, in seconds.
        delay_max: no delay is longer than this.
        randomization_factor: the jitter, as a fraction of the delay (0 for none).
        rng: the source of randomness in [0, 1); injectable for tests.
    """

    def __init__(
        self,
        delay: float = 1.0,
        delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if delay <= 0 or delay_max < delay:
            raise ValueError("need 0 < delay <= delay_max")
        if not 0 <= randomization_factor <= 1:
            raise ValueError("randomization_factor must be between 0 and 1")
        self.delay = delay
        self.delay_max = delay_max
        self.randomization_factor = randomization_factor
        self.attempts = 0
        self._rng = rng

    def next(self) -> float:
        """The delay before the next attempt, in seconds; counts the attempt."""
        seconds: float = self.delay * 2.0 ** min(self.attempts, _MAX_EXPONENT)
        self.attempts += 1
        if self.randomization_factor:
            r = self._rng()
            deviation = r * self.randomization_factor * seconds
            # one draw decides both the size and, through its first decimal, the sign
            seconds = seconds - deviation if int(r * 10) & 1 == 0 else seconds + deviation
        return min(seconds, self.delay_max)

    def reset(self) -> None:
        """Start again from the first delay (after a successful reconnection)."""
        self.attempts = 0
