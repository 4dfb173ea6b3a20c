"use strict";
// Calling an eventsock server from socket.io-client (Node or a browser bundle), with
// eventsock's error answers turned into exceptions.
//
// A successful ack is the handler's return value, as with any Socket.IO server. A
// call the handler rejected is answered with one argument shaped like
//   { $error: { code: "not_found", message: "no user 7", data: { id: 7 } } }
// and callOrThrow() throws it as a RemoteError instead of returning it.

// --8<-- [start:helper]
class RemoteError extends Error {
  constructor({ code, message, data }) {
    super(message);
    this.name = "RemoteError";
    this.code = code; // "invalid_arguments", "unknown_event", "internal_error", or the app's
    this.data = data; // undefined when the server sent none
  }
}

function isErrorObject(value) {
  if (value === null || typeof value !== "object" || Object.keys(value).length !== 1) return false;
  const error = value.$error;
  return error !== null && typeof error === "object"
    && typeof error.code === "string" && typeof error.message === "string";
}

// Like socket.timeout(ms).emitWithAck(event, ...args), but an error answer throws.
async function callOrThrow(socket, event, ...args) {
  const answer = await socket.timeout(5000).emitWithAck(event, ...args);
  if (isErrorObject(answer)) throw new RemoteError(answer.$error);
  return answer;
}
// --8<-- [end:helper]

module.exports = { RemoteError, isErrorObject, callOrThrow };
