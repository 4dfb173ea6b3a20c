// The whiteboard in headless Chromium: two pages on one board, a stroke drawn with the
// mouse in one appears in the other, cursors are live, a late page gets the board, a
// page that leaves takes its cursor along, and clearing reaches everyone.
//
// usage: node browser-test.mjs <server url> <screenshot.png>
// CHROMIUM names the browser (default /usr/bin/chromium). Prints one JSON line per
// step; exits 0 when every step passed, 1 with {"error": ...} otherwise. Run by
// tests/test_browser.py; every wait is a condition with a timeout, nothing sleeps.
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.log(JSON.stringify({ error: "usage: node browser-test.mjs <url> <screenshot.png>" }));
  process.exit(1);
}
const STEP_MS = 5000;
const WATCHDOG_MS = 25000;
const COLOUR = "#e11d48";
const RGB = [0xe1, 0x1d, 0x48];
const WHITE = [255, 255, 255];
const ROOM = `t${Date.now().toString(36)}`;

const watchdog = setTimeout(() => fail(new Error(`still running after ${WATCHDOG_MS} ms`)), WATCHDOG_MS);
let browser = null;
const problems = []; // page errors and console errors, from every page

function report(step, details = {}) {
  console.log(JSON.stringify({ step, ...details }));
}

async function fail(err) {
  console.log(JSON.stringify({ error: String(err && err.stack ? err.stack : err) }));
  await browser?.close().catch(() => {});
  process.exit(1);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function open(name) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(STEP_MS);
  page.on("pageerror", (err) => problems.push(`${name}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`${name}: console: ${msg.text()}`);
  });
  const response = await page.goto(`${url}/?room=${ROOM}&name=${name}`);
  check(response.ok(), `GET / answered ${response.status()}`);
  await page.waitForFunction(() => window.whiteboard?.state.joined);
  return page;
}

// The saved strokes, comparable between pages.
const strokesOf = (page) =>
  page.evaluate(() =>
    window.whiteboard.state.strokes.map(({ id, points, colour, width }) => ({ id, points, colour, width })),
  );

// The canvas pixel at board point (x, y), as [r, g, b].
const pixel = (page, x, y) =>
  page.evaluate(([x, y]) => {
    const data = document.getElementById("board").getContext("2d").getImageData(x, y, 1, 1).data;
    return [data[0], data[1], data[2]];
  }, [x, y]);

// Where board point (x, y) is on the screen.
async function screenPoint(page, x, y) {
  const box = await page.locator("#board").boundingBox();
  return [box.x + (x / 1600) * box.width, box.y + (y / 1000) * box.height];
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
// Canvas colours may be off by a unit or two (antialiasing, overlapping pieces).
const near = (rgb, want) => rgb.every((v, i) => Math.abs(v - want[i]) <= 4);

async function main() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // as root (CI) Chromium refuses to start with its sandbox
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  report("launched", { version: browser.version() });

  const ann = await open("ann");
  const bob = await open("bob");
  const annId = await ann.evaluate(() => window.whiteboard.state.you);
  const bobId = await bob.evaluate(() => window.whiteboard.state.you);
  await ann.waitForFunction((id) => window.whiteboard.state.users.has(id), bobId);
  report("joined", { room: ROOM });

  // ann picks a colour and a width, then draws with the mouse: across the middle of
  // the board, then down
  await ann.locator("#colour").fill(COLOUR);
  await ann.locator("#width").fill("12");
  const path = [[400, 500], [1200, 500], [1200, 800]];
  await ann.mouse.move(...(await screenPoint(ann, ...path[0])));
  await ann.mouse.down();
  for (const point of path.slice(1)) {
    await ann.mouse.move(...(await screenPoint(ann, ...point)), { steps: 25 });
  }
  await ann.mouse.up();
  // every piece saved by the server (each has its id)
  await ann.waitForFunction(() => {
    const { strokes } = window.whiteboard.state;
    return strokes.length > 0 && strokes.every((s) => s.id !== null);
  });
  const drawn = await strokesOf(ann);
  check(drawn.every((s) => s.colour === COLOUR && s.width === 12), "colour or width not applied");
  const points = drawn.flatMap((s) => s.points);
  check(points.length >= 10, `only ${points.length} points recorded`);
  report("drawn", { pieces: drawn.length, points: points.length });

  // bob sees the same pieces, and the canvas shows them
  await bob.waitForFunction((n) => window.whiteboard.state.strokes.length >= n, drawn.length);
  check(same(await strokesOf(bob), drawn), "bob's strokes differ from ann's");
  for (const [x, y] of [[800, 500], [1200, 650]]) {
    const rgb = await pixel(bob, x, y);
    check(near(rgb, RGB), `bob's canvas at ${x},${y} is ${rgb}, not the stroke's colour`);
  }
  check(near(await pixel(bob, 200, 200), WHITE), "bob's canvas is not blank elsewhere");
  report("stroke seen", { by: "bob" });

  // ann's cursor moves; bob sees it where it stopped, labelled with her name
  await ann.mouse.move(...(await screenPoint(ann, 480, 300)), { steps: 10 });
  await bob.waitForFunction((id) => {
    const c = window.whiteboard.state.cursors.get(id);
    return c && Math.abs(c.x - 480) < 2 && Math.abs(c.y - 300) < 2;
  }, annId);
  const label = await bob.locator(`#cursors .cursor[data-id="${annId}"]`).textContent();
  check(label === "ann", `ann's cursor is labelled ${JSON.stringify(label)}`);
  report("cursor seen", { by: "bob" });

  // cat joins late and gets the board as it is, with who is there
  const cat = await open("cat");
  check(same(await strokesOf(cat), drawn), "the late page's strokes differ from ann's");
  check(near(await pixel(cat, 800, 500), RGB), "the late page's canvas does not show the stroke");
  const users = await cat.evaluate(() => [...window.whiteboard.state.users.values()].sort());
  check(same(users, ["ann", "bob", "cat"]), `the late page sees users ${users}`);
  report("late join", { strokes: drawn.length, users });

  await bob.screenshot({ path: screenshot });
  report("screenshot", { path: screenshot });

  // ann leaves: her cursor goes from bob's page, her name from cat's
  await ann.close();
  await bob.waitForFunction((id) => !window.whiteboard.state.cursors.has(id) &&
    !document.querySelector(`#cursors [data-id="${id}"]`), annId);
  await cat.waitForFunction((id) => !window.whiteboard.state.users.has(id), annId);
  report("left");

  // bob clears the board: it is blank on his page and on cat's
  await bob.locator("#clear").click();
  for (const page of [bob, cat]) {
    await page.waitForFunction(() => window.whiteboard.state.strokes.length === 0);
    check(near(await pixel(page, 800, 500), WHITE), "the canvas still shows the stroke");
  }
  report("cleared");

  check(problems.length === 0, `errors in the pages: ${problems.join("; ")}`);
  await browser.close();
  clearTimeout(watchdog);
  report("done");
}

main().catch(fail);
