"use strict";
// Reference socket.io 4 server (msgpack parser, websocket only) for eventsock
// interop tests. See README.md for the CLI contract and the reference app.
//
// usage: node server.js [--ping-interval MS] [--ping-timeout MS] [--recovery]

const http = require("http");
const { Server } = require("socket.io");
const msgpackParser = require("socket.io-msgpack-parser");
const { toPlain } = require("./plain");

function parseArgs(argv) {
  const opts = { pingInterval: 25000, pingTimeout: 20000, recovery: false };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    if (name === "--recovery") {
      opts.recovery = true;
      continue;
    }
    const value = Number(argv[i + 1]);
    if (name === "--ping-interval") opts.pingInterval = value;
    else if (name === "--ping-timeout") opts.pingTimeout = value;
    else throw new Error("unknown option: " + name);
    if (!Number.isFinite(value) || value <= 0) throw new Error("bad value for " + name);
    i++;
  }
  return opts;
}

function emitLine(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// Call the ack callback only if the client asked for one.
function reply(ack, ...args) {
  if (typeof ack === "function") ack(...args);
}

// Split socket.io handler args into (args, ack).
function splitAck(args) {
  if (args.length && typeof args[args.length - 1] === "function") {
    return [args.slice(0, -1), args[args.length - 1]];
  }
  return [args, undefined];
}

// Disconnect reasons after which the test app emits the "missed" ticks (the
// reasons a client can come back from; see the "disconnect" handler below).
const RECOVERABLE_REASONS = new Set(["transport close", "transport error", "ping timeout", "forced close"]);

const opts = parseArgs(process.argv.slice(2));
const httpServer = http.createServer();
const io = new Server(httpServer, {
  parser: msgpackParser,
  transports: ["websocket"],
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  maxHttpBufferSize: 10_000_000,
  serveClient: false,
  // With --recovery, every packet emitted without an ack gets an offset
  // appended (as its last argument) and is stored for replay.
  ...(opts.recovery
    ? { connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true } }
    : {}),
});

// ---- reference app, namespace "/" ----

io.use((socket, next) => {
  const auth = socket.handshake.auth;
  if (auth && typeof auth === "object" && auth.token === "secret") return next();
  const err = new Error("Not authorized");
  err.data = { code: 42 };
  next(err);
});

io.on("connection", (socket) => {
  emitLine({
    event: "connect",
    sid: socket.id,
    auth: toPlain(socket.handshake.auth),
    recovered: socket.recovered,
  });

  socket.on("disconnect", (reason) => {
    emitLine({ event: "disconnect", reason });
    if (RECOVERABLE_REASONS.has(reason)) {
      // The socket has already left its rooms, so nobody receives these now.
      // With --recovery the adapter stores them (for the room socket.id) and
      // replays them if the client recovers the session.
      io.to(socket.id).emit("tick", "missed-1");
      io.to(socket.id).emit("tick", "missed-2");
    }
  });

  socket.on("tick_me", (...raw) => {
    const [[n], ack] = splitAck(raw);
    for (let i = 0; i < n; i++) socket.emit("tick", i);
    reply(ack, true);
  });

  socket.on("echo", (...raw) => {
    const [args, ack] = splitAck(raw);
    reply(ack, ...args);
  });

  socket.on("join", (...raw) => {
    const [[room], ack] = splitAck(raw);
    socket.join(room);
    reply(ack, true);
  });

  socket.on("shout", (...raw) => {
    const [[room, msg], ack] = splitAck(raw);
    socket.to(room).emit("shout", msg);
    reply(ack, true);
  });

  socket.on("please_call", (...raw) => {
    const [[x], ack] = splitAck(raw);
    socket.timeout(5000).emit("question", x, (err, ...answers) => {
      if (err) reply(ack, { error: String(err) });
      else reply(ack, ...answers);
    });
  });

  socket.on("provoke", (...raw) => {
    const [, ack] = splitAck(raw);
    socket.emit("explode");
    reply(ack, true);
  });

  socket.on("kick_me", () => {
    socket.disconnect(); // namespace-level DISCONNECT, connection kept
  });

  socket.on("boom", () => {
    try {
      throw new Error("boom");
    } catch (e) {
      emitLine({ event: "handler_error" });
    }
  });
});

// ---- lifecycle ----

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
// The parent test process holds our stdin; when it goes away, so do we.
process.stdin.on("end", shutdown);
process.stdin.on("error", shutdown);
process.stdin.resume();

httpServer.listen(0, "127.0.0.1", () => {
  emitLine({ event: "listening", port: httpServer.address().port });
});
