"""The whiteboard example in a real browser: headless Chromium (Debian's ``chromium``
package, driven by playwright-core from npm) against ``examples/whiteboard/server.py``.

The test builds the page first when needed (``npm ci`` and ``npm run build`` in
examples/whiteboard), then runs ``examples/whiteboard/browser-test.mjs``, which opens
pages on one board, draws with the mouse and checks every page's state and canvas
pixels. Without Chromium, Node or npm the test fails, saying what to install; it is
never skipped. The screenshot it takes is kept in tests/artifacts/whiteboard.png.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(150)

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "whiteboard"
BUNDLE = APP / "dist" / "bundle.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
#: The npm packages browser-test.mjs and the build need.
PACKAGES = ("esbuild", "playwright-core", "socket.io-client", "socket.io-msgpack-parser")
#: Seconds for `npm ci` (a cold npm cache downloads about 30 MB), for the build, for the
#: server to start and stop, and for the browser run (its own watchdog fires at 25 s).
NPM_CI_TIMEOUT = 120.0
BUILD_TIMEOUT = 30.0
SERVER_TIMEOUT = 15.0
BROWSER_TIMEOUT = 40.0

Process = asyncio.subprocess.Process


def require(program: str, hint: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: {hint}")
    return path


def chromium() -> str:
    return require(
        "chromium",
        "the browser test needs Debian's chromium package "
        "(`apt-get install -y chromium`; .ci/run installs it)",
    )


async def finish(proc: Process, what: str, timeout: float) -> tuple[bytes, bytes]:
    """Wait for ``proc`` to end within ``timeout`` seconds, killing it otherwise;
    returns its output."""
    try:
        return await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):  # it may have just exited
            proc.kill()
        out, err = await asyncio.wait_for(proc.communicate(), SERVER_TIMEOUT)
        pytest.fail(f"{what} did not finish within {timeout} s:\n{out.decode()}\n{err.decode()}")


async def npm(*args: str, timeout: float) -> None:
    proc = await asyncio.create_subprocess_exec(
        require("npm", "the browser test builds the page with Node 20 and npm"),
        *args,
        cwd=APP,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await finish(proc, f"npm {' '.join(args)}", timeout)
    if proc.returncode != 0:
        pytest.fail(f"npm {' '.join(args)} in {APP} failed:\n{out.decode()}\n{err.decode()}")


async def build_the_page() -> None:
    """``npm ci`` when the packages are missing, ``npm run build`` when the bundle is
    missing or older than its sources."""
    if any(not (APP / "node_modules" / name).is_dir() for name in PACKAGES):
        await npm("ci", "--no-audit", "--no-fund", timeout=NPM_CI_TIMEOUT)
    sources = [APP / "main.js", APP / "package-lock.json"]
    if not BUNDLE.is_file() or BUNDLE.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        await npm("run", "build", timeout=BUILD_TIMEOUT)
    assert BUNDLE.is_file(), f"npm run build did not write {BUNDLE}"


async def test_whiteboard_in_chromium() -> None:
    browser = chromium()
    node = require("node", "the browser test needs Node 20")
    await build_the_page()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "whiteboard.png"
    screenshot.unlink(missing_ok=True)

    # -W error: a warning in the server fails the run.
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(APP / "server.py"),
        "--port",
        "0",
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        line = (await asyncio.wait_for(server.stdout.readline(), SERVER_TIMEOUT)).decode()
        assert line.startswith("listening on http://127.0.0.1:"), line
        url = line.removeprefix("listening on ").strip()
        hint = (await asyncio.wait_for(server.stdout.readline(), SERVER_TIMEOUT)).decode()
        assert hint == f"open {url}/?room=lobby in two browser windows\n"

        run = await asyncio.create_subprocess_exec(
            node,
            str(APP / "browser-test.mjs"),
            url,
            str(screenshot),
            cwd=APP,
            env={**os.environ, "CHROMIUM": browser},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await finish(run, "browser-test.mjs", BROWSER_TIMEOUT)
        report = [json.loads(line) for line in out.decode().splitlines()]
        assert run.returncode == 0, f"the browser run failed:\n{out.decode()}\n{err.decode()}"
        steps = [entry.get("step") for entry in report]
        assert steps == [
            "launched",
            "joined",
            "drawn",
            "stroke seen",
            "cursor seen",
            "late join",
            "screenshot",
            "left",
            "cleared",
            "done",
        ], out.decode()
        assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        print(f"screenshot: {screenshot}")

        server.send_signal(signal.SIGTERM)
        out, err = await finish(server, "the server", SERVER_TIMEOUT)
        assert server.returncode == 0, err.decode()
        assert (out, err) == (b"", b"")
    finally:
        if server.returncode is None:
            server.kill()
            await finish(server, "the killed server", SERVER_TIMEOUT)
