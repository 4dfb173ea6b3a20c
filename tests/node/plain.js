"use strict";
// JSON-friendly view of socket.io values: binary becomes {"$bytes": "<hex>"}.

function toPlain(value) {
  if (value instanceof ArrayBuffer) return { $bytes: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  }
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = toPlain(v);
    return out;
  }
  return value;
}

module.exports = { toPlain };
