"""The soak benchmark's quick variant (bench/soak.py --quick: 200 connections opening,
exchanging events and closing, 5 cycles, the server in its own process): the server's
RSS after the last cycle within 10% of after the first, and no growth in its tasks,
sessions, connections, rooms or pending acks. The full run (1,000 x 20) is documented in
bench/README.md."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

SOAK = Path(__file__).resolve().parent.parent / "bench" / "soak.py"


async def test_soak_quick(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(SOAK),
        "--quick",
        "--json",
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 100)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (stdout + stderr).decode()
    assert stderr == b""
    results = json.loads(out.read_text())
    cycles = results["cycles"]
    assert len(cycles) == 5
    first, last = cycles[0], cycles[-1]
    assert last["rss"] <= first["rss"] * 1.10
    for key in ("tasks", "sessions", "connections", "rooms", "pending_acks"):
        assert last[key] <= first[key], key
    # only the control client is left on the server between cycles
    assert last["sessions"] == 1 and last["connections"] == 1 and last["pending_acks"] == 0
