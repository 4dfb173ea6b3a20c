"use strict";
// socket.io 4 client (msgpack parser, websocket only) over wss:// for eventsock's TLS
// tests (tests/test_tls.py). One JSON object per line on stdout.
//
// usage: node tls_client.js <https-url> <ca.pem>
//
// 1. connects without the CA: the certificate must be refused
//    -> {"step":"untrusted","message":"<the connect_error message>: <the TLS error>"}
// 2. connects with the CA (the `ca` option, passed on to Node's TLS)
//    -> {"step":"welcome","args":[...]}     the event the server emits on connect
//    -> {"step":"echo","equal":true,"length":N}   a Buffer sent to "echo" and acked back
// 3. -> {"step":"done"}; exit code 0. Any failure: {"step":"error","message":...}, exit 1.

const fs = require("fs");
const { io } = require("socket.io-client");
const msgpackParser = require("socket.io-msgpack-parser");

const TIMEOUT_MS = 10000;

function emitLine(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function fail(message) {
  emitLine({ step: "error", message: String(message) });
  process.exit(1);
}

const [url, caPath] = process.argv.slice(2);
if (!url || !caPath) fail("usage: node tls_client.js <https-url> <ca.pem>");
const watchdog = setTimeout(() => fail(`not done within ${TIMEOUT_MS} ms`), TIMEOUT_MS);

function open(extra) {
  return io(url, {
    parser: msgpackParser,
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    ...extra,
  });
}

async function main() {
  const untrusted = open({});
  const message = await new Promise((resolve, reject) => {
    untrusted.once("connect", () => reject(new Error("connected without trusting the CA")));
    // the TLS error itself is the transport error's description (an Error from ws)
    untrusted.once("connect_error", (err) => {
      const cause = err.description;
      resolve(`${err.message}: ${cause && cause.code ? cause.code + " " : ""}${cause && cause.message}`);
    });
  });
  untrusted.close();
  emitLine({ step: "untrusted", message });

  const socket = open({ ca: fs.readFileSync(caPath) });
  const welcome = new Promise((resolve) => socket.once("welcome", (...args) => resolve(args)));
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  emitLine({ step: "welcome", args: await welcome });
  const blob = Buffer.alloc(100000, 7);
  const back = await socket.timeout(5000).emitWithAck("echo", blob);
  emitLine({ step: "echo", equal: Buffer.from(back).equals(blob), length: back.byteLength });
  socket.close();
  clearTimeout(watchdog);
  emitLine({ step: "done" });
}

main().catch((err) => fail(err && err.stack ? err.stack : err));
