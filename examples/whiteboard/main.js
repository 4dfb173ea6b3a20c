// The whiteboard page: draws with pointer events on a canvas and shares strokes and
// cursors with everyone on the same board through the eventsock server.
// `npm run build` bundles this file with socket.io-client into dist/bundle.js.
// --8<-- [start:imports]
import { io } from "socket.io-client";
import * as msgpackParser from "socket.io-msgpack-parser";
// --8<-- [end:imports]

const PIECE_MS = 50; // while drawing, a piece of the stroke leaves every 50 ms
const PIECE_POINTS = 256; // the server's MAX_PIECE_POINTS
const CURSOR_MS = 40; // at most 25 cursor positions a second
const ACK_MS = 5000;

const params = new URLSearchParams(location.search);
const room = params.get("room") || "lobby";
const name = params.get("name") || `guest-${Math.random().toString(36).slice(2, 6)}`;

const canvas = document.getElementById("board");
const ctx = canvas.getContext("2d");
const cursorsLayer = document.getElementById("cursors");
const colourInput = document.getElementById("colour");
const widthInput = document.getElementById("width");
const statusLine = document.getElementById("status");
const usersLine = document.getElementById("users");
document.getElementById("room").textContent = room;

// Everything the page knows, also read by the browser test (window.whiteboard).
const state = {
  room,
  name,
  joined: false,
  you: null,
  strokes: [], // {id, by, points, colour, width}; id is null until the server saved it
  users: new Map(), // session id -> name
  cursors: new Map(), // session id -> {x, y, element}
  errors: [], // what the server refused, newest last
};

// --8<-- [start:socket]
const socket = io({ parser: msgpackParser, transports: ["websocket"] });
// --8<-- [end:socket]
window.whiteboard = { state, socket };

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

function refused(answer) {
  // eventsock answers a refused call with {$error: {code, message}}
  return answer && typeof answer === "object" && "$error" in answer ? answer.$error : null;
}

// -- drawing -------------------------------------------------------------------------

function drawStroke({ points, colour, width }) {
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = width;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (points.length === 1) {
    const [x, y] = points[0];
    ctx.beginPath();
    ctx.arc(x, y, width / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(points[0][0], points[0][1]);
  for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
  ctx.stroke();
}

function render() {
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (const stroke of state.strokes) drawStroke(stroke);
  if (drawing && drawing.points.length > drawing.sent) {
    drawStroke({ ...drawing, points: drawing.points.slice(Math.max(drawing.sent - 1, 0)) });
  }
}

function boardPoint(event) {
  const box = canvas.getBoundingClientRect();
  const x = ((event.clientX - box.left) * canvas.width) / box.width;
  const y = ((event.clientY - box.top) * canvas.height) / box.height;
  const clamp = (v, max) => Math.round(Math.min(Math.max(v, 0), max) * 10) / 10;
  return [clamp(x, canvas.width), clamp(y, canvas.height)];
}

// --8<-- [start:pieces]
// The stroke being drawn: sent in pieces, each a polyline that starts where the
// previous one ended, so that the others see it grow while it is drawn.
let drawing = null;
let pieceTimer = null;

function sendPieces() {
  pieceTimer = null;
  if (!drawing) return;
  while (drawing.points.length > drawing.sent) {
    const start = Math.max(drawing.sent - 1, 0);
    const points = drawing.points.slice(start, start + PIECE_POINTS);
    drawing.sent = start + points.length;
    sendStroke({ points, colour: drawing.colour, width: drawing.width });
  }
}

function sendStroke(piece) {
  const stroke = { id: null, by: state.you, ...piece };
  state.strokes.push(stroke);
  socket.timeout(ACK_MS).emit("stroke", piece, (err, answer) => {
    const error = err ? { code: "timeout", message: "the server did not answer" } : refused(answer);
    if (error) {
      // not on the board: take it off this page too, and say why
      state.strokes = state.strokes.filter((s) => s !== stroke);
      state.errors.push(error);
      say(`stroke refused: ${error.message}`, true);
      render();
    } else {
      stroke.id = answer;
    }
  });
}
// --8<-- [end:pieces]

canvas.addEventListener("pointerdown", (event) => {
  if (event.button !== 0 || !state.joined) return;
  canvas.setPointerCapture(event.pointerId);
  drawing = {
    points: [boardPoint(event)],
    sent: 0,
    colour: colourInput.value,
    width: Number(widthInput.value),
  };
  drawStroke({ ...drawing });
  pieceTimer = setTimeout(sendPieces, PIECE_MS);
});

canvas.addEventListener("pointermove", (event) => {
  const point = boardPoint(event);
  moveCursor(point);
  if (!drawing) return;
  const last = drawing.points[drawing.points.length - 1];
  if (last[0] === point[0] && last[1] === point[1]) return;
  drawing.points.push(point);
  drawStroke({ ...drawing, points: [last, point] });
  if (pieceTimer === null) pieceTimer = setTimeout(sendPieces, PIECE_MS);
});

function endStroke() {
  if (!drawing) return;
  clearTimeout(pieceTimer);
  sendPieces();
  drawing = null;
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

// --8<-- [start:clear]
document.getElementById("clear").addEventListener("click", () => {
  socket.timeout(ACK_MS).emit("clear", (err, answer) => {
    const error = err ? { message: "the server did not answer" } : refused(answer);
    if (error) {
      say(`clear refused: ${error.message}`, true);
      return;
    }
    // Pieces still waiting for their ack were sent after the clear: they stay.
    state.strokes = state.strokes.filter((s) => s.id === null);
    render();
  });
});
// --8<-- [end:clear]

// -- cursors -------------------------------------------------------------------------

// --8<-- [start:cursor]
// Volatile and throttled: a position the network cannot take now is dropped, not
// queued, and the last one always leaves (trailing timer).
let cursorDue = 0;
let cursorTimer = null;
let cursorAt = null;

function moveCursor(point) {
  cursorAt = point;
  if (cursorTimer !== null) return;
  const wait = cursorDue - performance.now();
  if (wait > 0) {
    cursorTimer = setTimeout(() => {
      cursorTimer = null;
      sendCursor();
    }, wait);
  } else {
    sendCursor();
  }
}

function sendCursor() {
  cursorDue = performance.now() + CURSOR_MS;
  if (state.joined) socket.volatile.emit("cursor", cursorAt[0], cursorAt[1]);
}
// --8<-- [end:cursor]

function hue(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h} 70% 40%)`;
}

function showCursor(id, x, y) {
  let cursor = state.cursors.get(id);
  if (!cursor) {
    const element = document.createElement("div");
    element.className = "cursor";
    element.dataset.id = id;
    element.style.setProperty("--colour", hue(id));
    const label = document.createElement("span");
    label.textContent = state.users.get(id) ?? "?";
    element.append(label);
    cursorsLayer.append(element);
    cursor = { element };
    state.cursors.set(id, cursor);
  }
  cursor.x = x;
  cursor.y = y;
  cursor.element.style.left = `${(100 * x) / canvas.width}%`;
  cursor.element.style.top = `${(100 * y) / canvas.height}%`;
}

function dropCursor(id) {
  state.cursors.get(id)?.element.remove();
  state.cursors.delete(id);
}

function showUsers() {
  const others = [...state.users].filter(([id]) => id !== state.you).map(([, n]) => n);
  usersLine.textContent = others.length ? `with ${others.join(", ")}` : "alone here";
}

// -- the connection ------------------------------------------------------------------

// --8<-- [start:join]
socket.on("connect", () => {
  // on every (re)connection: a new session, so join again and take the board as it is
  say("joining…");
  socket.timeout(ACK_MS).emit("join", room, name, (err, answer) => {
    const error = err ? { message: "the server did not answer" } : refused(answer);
    if (error) {
      state.errors.push(error);
      say(`cannot join: ${error.message}`, true);
      return;
    }
    canvas.width = answer.width;
    canvas.height = answer.height;
    state.you = answer.you;
    state.strokes = answer.strokes;
    state.users = new Map(answer.users.map((u) => [u.id, u.name]));
    for (const id of [...state.cursors.keys()]) dropCursor(id);
    state.joined = true;
    say(`${name} on ${room}`);
    showUsers();
    render();
  });
});
// --8<-- [end:join]

socket.on("disconnect", (reason) => {
  state.joined = false;
  drawing = null;
  say(`offline (${reason}), reconnecting…`, true);
});

socket.on("connect_error", (err) => say(`cannot connect: ${err.message}`, true));

// --8<-- [start:events]
socket.on("stroke", (stroke) => {
  if (!state.joined) return; // the join answer brings the whole board
  state.strokes.push(stroke);
  drawStroke(stroke);
});

socket.on("cleared", (by) => {
  state.strokes = state.strokes.filter((s) => s.id === null);
  render();
  say(`${state.users.get(by) ?? "someone"} cleared the board`);
});
// --8<-- [end:events]

socket.on("cursor", (id, x, y) => {
  if (state.users.has(id)) showCursor(id, x, y);
});

socket.on("joined", ({ id, name: who }) => {
  state.users.set(id, who);
  showUsers();
});

socket.on("left", (id) => {
  state.users.delete(id);
  dropCursor(id);
  showUsers();
});

render();
