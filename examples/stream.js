"use strict";
// Iterating an eventsock stream from socket.io-client (Node or a browser bundle):
//   for await (const item of consumeStream(socket, "readings", ["t1"], 8)) { ... }
// It speaks the stream events of eventsock's docs (guide/streams.md): it opens the
// stream with a $stream call, grants credits as it consumes, and cancels the stream
// when the loop is left early.

const { RemoteError, isErrorObject } = require("./remote_error.js");

let nextStreamId = 0; // a client's stream ids are even

// --8<-- [start:helper]
async function* consumeStream(socket, name, args = [], window = 16) {
  const id = nextStreamId;
  nextStreamId += 2;
  const items = [];
  let ended = false;
  let failure = null;
  let wake = null;
  const onItem = (streamId, item) => {
    if (streamId !== id) return;
    items.push(item);
    if (wake) wake();
  };
  const onEnd = (streamId, error) => {
    if (streamId !== id) return;
    ended = true;
    if (isErrorObject(error)) failure = new RemoteError(error.$error);
    if (wake) wake();
  };
  socket.on("$item", onItem);
  socket.on("$end", onEnd);
  try {
    const answer = await socket.timeout(5000).emitWithAck("$stream", id, name, window, ...args);
    if (isErrorObject(answer)) throw new RemoteError(answer.$error);
    let consumed = 0;
    while (true) {
      while (items.length === 0 && !ended) {
        await new Promise((resolve) => { wake = resolve; });
        wake = null;
      }
      if (items.length > 0) {
        const item = items.shift();
        consumed += 1;
        if (consumed >= Math.max(1, window >> 1) && !ended) {
          socket.emit("$credit", id, consumed); // grant as much again
          consumed = 0;
        }
        yield item;
        continue;
      }
      if (failure) throw failure;
      return;
    }
  } finally {
    socket.off("$item", onItem);
    socket.off("$end", onEnd);
    if (!ended && socket.connected) socket.emit("$cancel", id); // left early
  }
}
// --8<-- [end:helper]

module.exports = { consumeStream };
