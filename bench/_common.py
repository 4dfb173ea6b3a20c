"""Pieces both benchmarks use: the fan-out tick counter and the profile reports."""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import pstats
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Sink:
    """One client's tick counter; ``done`` resolves at the expected count."""

    __slots__ = ("count", "disorder", "done", "expected", "finished_at")

    def __init__(self) -> None:
        self.count = 0
        self.expected = 0
        self.disorder = 0
        self.finished_at = 0.0
        self.done: asyncio.Future[None] | None = None

    def reset(self, expected: int) -> asyncio.Future[None]:
        self.count = 0
        self.expected = expected
        self.disorder = 0
        self.finished_at = 0.0
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def tick(self, i: int) -> None:
        if i != self.count:
            self.disorder += 1
        self.count += 1
        if self.count == self.expected:
            self.finished_at = time.perf_counter()
            if self.done is not None and not self.done.done():
                self.done.set_result(None)


def new_profile(clock: str) -> cProfile.Profile:
    """A profiler on wall time (the default) or on this process's CPU time."""
    if clock == "cpu":
        return cProfile.Profile(time.process_time)
    return cProfile.Profile()


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def short_path(filename: str) -> str:
    """A profiled function's file, relative to site-packages or the repository."""
    for marker in ("site-packages/", "/lib/python3."):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return tail if marker == "site-packages/" else "stdlib/" + tail.split("/", 1)[-1]
    with contextlib.suppress(ValueError):
        return str(Path(filename).resolve().relative_to(HERE.parent))
    return filename


def profile_table(files: list[Path], top: int, what: str, unit: str) -> str:
    """Top functions by own time and by cumulative time, summed over ``files``;
    ``what`` names the clock and ``unit`` what each file covers."""
    stats = pstats.Stats(str(files[0]), stream=io.StringIO())
    for extra in files[1:]:
        stats.add(str(extra))
    rows = []
    for (filename, line, func), (_, calls, own, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = func if filename == "~" else f"{short_path(filename)}:{line}({func})"
        rows.append((own, cum, calls, where))
    total = float(stats.total_tt) or 1e-9  # type: ignore[attr-defined]
    idle = sum(own for own, _, _, where in rows if "poll' of 'select.epoll" in where)
    out = [
        f"{what} {total:.3f} s over {len(files)} {unit}; idle in epoll {idle:.3f} s"
        f" ({idle / total:.0%}), busy {total - idle:.3f} s",
        f"  by own time (top {top}):",
        "     own s   own%    cum s     calls  function",
    ]
    for own, cum, calls, where in sorted(rows, reverse=True)[:top]:
        out.append(f"  {own:8.3f} {own / total:6.1%} {cum:8.3f} {calls:9d}  {where}")
    out += [f"  by cumulative time (top {top}):", "     own s   own%    cum s     calls  function"]
    for own, cum, calls, where in sorted(rows, key=lambda r: r[1], reverse=True)[:top]:
        out.append(f"  {own:8.3f} {own / total:6.1%} {cum:8.3f} {calls:9d}  {where}")
    return "\n".join(out)
