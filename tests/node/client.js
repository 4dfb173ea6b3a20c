"use strict";
// Reference socket.io 4 client (msgpack parser, websocket only) for eventsock
// interop tests. See README.md for the CLI contract and the scenarios.
//
// usage: node client.js <url> <scenario> [--idle-ms N]

const { io } = require("socket.io-client");
const msgpackParser = require("socket.io-msgpack-parser");
const { toPlain } = require("./plain");

const WATCHDOG_MS = 15000;
const ACK_TIMEOUT_MS = 5000;

function emitLine(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function fail(message) {
  emitLine({ step: "error", message: String(message) });
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { url: argv[0], scenario: argv[1], idleMs: 1500 };
  if (!opts.url || !opts.scenario) fail("usage: node client.js <url> <scenario> [--idle-ms N]");
  for (let i = 2; i < argv.length; i += 2) {
    if (argv[i] !== "--idle-ms") fail("unknown option: " + argv[i]);
    opts.idleMs = Number(argv[i + 1]);
    if (!Number.isFinite(opts.idleMs) || opts.idleMs < 0) fail("bad value for --idle-ms");
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const sockets = [];

// Connect a fresh socket (own Manager); resolves on "connect", rejects on "connect_error".
// `extra` overrides the default options (only the recovery scenario uses it).
function connect(auth, extra = {}) {
  const socket = io(opts.url, {
    parser: msgpackParser,
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    auth,
    ...extra,
  });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

// Like socket.emitWithAck(), but resolves with ALL ack arguments (emitWithAck
// only returns the first one). Rejects at once if the socket is not connected
// or disconnects meanwhile, and after ACK_TIMEOUT_MS without an ack.
function call(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    if (!socket.connected) return reject(new Error(`cannot emit "${event}": not connected`));
    const onDisconnect = (reason) =>
      reject(new Error(`disconnected (${reason}) while waiting for the ack of "${event}"`));
    socket.once("disconnect", onDisconnect);
    socket.timeout(ACK_TIMEOUT_MS).emit(event, ...args, (err, ...answers) => {
      socket.off("disconnect", onDisconnect);
      if (err) reject(new Error(`no ack for "${event}": ${err.message}`));
      else resolve(answers);
    });
  });
}

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

// Resolves true as soon as check() is true (it is re-checked each time the
// returned poke() is called), or false after timeoutMs.
function waitUntil(check, timeoutMs) {
  let poke = () => {};
  const promise = new Promise((resolve) => {
    if (check()) return resolve(true);
    const timer = setTimeout(() => resolve(false), timeoutMs);
    poke = () => {
      if (check()) {
        clearTimeout(timer);
        resolve(true);
      }
    };
  });
  return { promise, poke: () => poke() };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function asBuffer(value) {
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return null;
}

const SECRET = { token: "secret" };

// How long the recovery scenario waits for the "missed" ticks after the
// reconnection (without CSR on the server they never come).
const MISSED_WAIT_MS = 1000;

const scenarios = {
  async auth() {
    const good = await connect(SECRET);
    emitLine({ step: "connected", id: good.id });
    good.disconnect();
    let bad;
    try {
      bad = await connect({ token: "bad" });
    } catch (err) {
      emitLine({ step: "connect_error", message: err.message, data: toPlain(err.data) });
      return;
    }
    throw new Error("connection with a bad token was accepted: " + bad.id);
  },

  async echo() {
    const socket = await connect(SECRET);
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const args = await call(socket, "echo", "hi", bytes, { nested: [1, 2.5, null, true] });
    emitLine({ step: "ack", args: toPlain(args) });
  },

  async server_call() {
    const socket = await connect(SECRET);
    socket.on("question", (x, cb) => cb(x * 2));
    const args = await call(socket, "please_call", 21);
    emitLine({ step: "ack", args: toPlain(args) });
  },

  async room() {
    const a = await connect(SECRET);
    const b = await connect(SECRET);
    await call(a, "join", "r1");
    await call(b, "join", "r1");
    let aCount = 0;
    a.on("shout", () => aCount++);
    const bGot = once(b, "shout");
    await call(a, "shout", "r1", "hello");
    emitLine({ step: "b_got", args: toPlain(await bGot) });
    await call(a, "echo", "sync");
    emitLine({ step: "a_got", count: aCount });
  },

  // eventsock's error answers, seen through the helper the errors guide documents
  async errors() {
    const { callOrThrow, RemoteError } = require("../../examples/remote_error.js");
    const socket = await connect(SECRET);
    const results = [];
    const calls = [
      ["find", 1], ["find", 7], ["no_such_event"], ["boom"], ["find"],
      ["typed_add", 1, 2], ["typed_add", "1", 2], ["small", "x".repeat(100)], ["flaky"],
      ["forbidden"],
    ];
    for (const [event, ...args] of calls) {
      try {
        results.push({ event, ok: toPlain(await callOrThrow(socket, event, ...args)) });
      } catch (err) {
        if (!(err instanceof RemoteError)) throw err;
        results.push({ event, code: err.code, message: err.message, data: toPlain(err.data ?? null) });
      }
    }
    emitLine({ step: "results", results });
  },

  // eventsock streams, through the helper the streams guide documents
  async streams() {
    const { consumeStream } = require("../../examples/stream.js");
    const socket = await connect(SECRET);
    const counted = [];
    for await (const i of consumeStream(socket, "count", [100], 4)) counted.push(i);
    const early = [];
    for await (const i of consumeStream(socket, "endless", [], 4)) {
      early.push(i);
      if (i === 2) break;
    }
    let error = null;
    const beforeError = [];
    try {
      for await (const i of consumeStream(socket, "broken")) beforeError.push(i);
    } catch (err) {
      error = { code: err.code, message: err.message };
    }
    let unknown = null;
    try {
      for await (const _ of consumeStream(socket, "nope")) { /* never */ }
    } catch (err) {
      unknown = err.code;
    }
    const after = await call(socket, "echo", "after");
    emitLine({ step: "streams", counted: counted.length, inOrder: counted.every((v, i) => v === i),
      early, beforeError, error, unknown, after: toPlain(after) });
  },

  async boom() {
    const socket = await connect(SECRET);
    socket.emit("boom");
    const args = await call(socket, "echo", 1);
    emitLine({ step: "ack", args: toPlain(args) });
  },

  async client_disconnect() {
    const socket = await connect(SECRET);
    emitLine({ step: "connected", id: socket.id });
    await call(socket, "echo", "x");
    const disconnected = once(socket, "disconnect");
    socket.disconnect();
    const [reason] = await disconnected;
    emitLine({ step: "disconnected", reason });
  },

  async server_disconnect() {
    const socket = await connect(SECRET);
    const disconnected = once(socket, "disconnect");
    socket.emit("kick_me");
    const [reason] = await disconnected;
    emitLine({ step: "disconnected", reason });
  },

  async idle() {
    const socket = await connect(SECRET);
    let disconnects = 0;
    socket.on("disconnect", () => disconnects++);
    await sleep(opts.idleMs);
    const args = await call(socket, "echo", "still here");
    emitLine({ step: "ack", args: toPlain(args) });
    emitLine({ step: "idle", disconnects });
  },

  async big() {
    const socket = await connect(SECRET);
    const buf = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < buf.length; i++) buf[i] = i % 251;
    const [echoed] = await call(socket, "echo", buf);
    const got = asBuffer(echoed);
    if (!got) throw new Error("echoed value is not binary: " + typeof echoed);
    emitLine({ step: "big", length: got.length, equal: buf.equals(got) });
  },

  async recovery() {
    const socket = await connect(SECRET, {
      reconnection: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 200,
      randomizationFactor: 0,
    });
    const ticks = []; // full argument lists, offsets included (JS keeps them)
    let waiter = { poke() {} };
    socket.on("tick", (...args) => {
      ticks.push(args);
      waiter.poke();
    });

    waiter = waitUntil(() => ticks.length >= 3, ACK_TIMEOUT_MS);
    await call(socket, "tick_me", 3);
    if (!(await waiter.promise)) throw new Error(`got ${ticks.length} of 3 ticks`);
    const firstId = socket.id;
    emitLine({ step: "first", id: firstId, ticks: toPlain(ticks) });

    // Drop the transport; the Manager reconnects by itself and the socket
    // sends CONNECT again (with pid and offset if the server gave a pid).
    const reconnected = once(socket, "connect");
    socket.io.engine.close();
    await reconnected;
    // socket.recovered is `pid && previousPid === pid`: undefined (not false)
    // when the server has CSR off, hence the === true.
    emitLine({ step: "reconnected", recovered: socket.recovered === true, same_id: socket.id === firstId });

    const hasMissed = () => ["missed-1", "missed-2"].every((m) => ticks.some((args) => args[0] === m));
    waiter = waitUntil(hasMissed, MISSED_WAIT_MS);
    const complete = await waiter.promise;
    emitLine({ step: "ticks", args: toPlain(ticks), missed_complete: complete });
  },
};

async function main() {
  const run = scenarios[opts.scenario];
  if (!run) throw new Error("unknown scenario: " + opts.scenario);
  await run();
}

setTimeout(() => fail(`watchdog: scenario did not finish in ${WATCHDOG_MS} ms`), WATCHDOG_MS).unref();

let finished = false;
main().then(
  () => {
    finished = true;
    emitLine({ step: "done", ok: true });
    for (const socket of sockets) socket.disconnect();
    process.exitCode = 0;
    // Let the DISCONNECT packets flush, then leave even if a handle lingers.
    setTimeout(() => process.exit(0), 200).unref();
  },
  (err) => fail(err && err.message ? err.message : err)
);

// A scenario waiting on a promise that can never settle (no handle left to
// keep node alive) must not look like success.
process.on("exit", (code) => {
  if (code === 0 && !finished) {
    emitLine({ step: "error", message: "event loop drained before the scenario finished" });
    process.exitCode = 1;
  }
});
