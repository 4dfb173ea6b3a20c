// The chat page's script: socket.io-client with the msgpack parser, bundled by esbuild
// into dist/chat.js (`npm install && npm run build`), which server.py serves.
import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";
import { callOrThrow } from "../remote_error.js";

const status = document.getElementById("status");
const log = document.getElementById("log");
const form = document.getElementById("form");
const input = document.getElementById("input");

function show(text, kind = "") {
  const item = document.createElement("li");
  item.textContent = text;
  item.className = kind;
  log.append(item);
  item.scrollIntoView({ block: "end" });
}

// --8<-- [start:connect]
const query = new URLSearchParams(location.search);
let nick = query.get("nick") || `guest${Math.floor(Math.random() * 1000)}`;

const socket = io({
  transports: ["websocket"], // eventsock serves WebSocket only: no long-polling
  parser: msgpackParser, // and the msgpack parser, not the default JSON one
  auth: (send) => send({ nick }), // called on every attempt: a new nick is used
});

socket.on("connect", () => {
  status.textContent = `Connected as ${nick}, in lobby.`;
  input.disabled = false;
  input.focus();
});
socket.on("connect_error", (err) => {
  status.textContent = `Cannot connect: ${err.message}`;
});
socket.on("disconnect", (reason) => {
  status.textContent = `Disconnected (${reason}), reconnecting…`;
});
socket.on("said", (room, from, text) => show(`[${room}] ${from}: ${text}`));
socket.on("notice", (text) => show(`* ${text}`, "notice"));
// --8<-- [end:connect]

// --8<-- [start:commands]
async function run(line) {
  const [command, ...rest] = line.split(" ");
  const argument = rest.join(" ");
  if (command === "/join" && argument) {
    const nicks = await callOrThrow(socket, "join", argument);
    status.textContent = `Connected as ${nick}, in ${argument}.`;
    show(`* now in ${argument}: ${nicks.join(", ")}`, "notice");
  } else if (command === "/who") {
    show(`* here: ${(await callOrThrow(socket, "who")).join(", ")}`, "notice");
  } else if (command === "/nick" && argument) {
    nick = await callOrThrow(socket, "nick", argument);
    show(`* you are now ${nick}`, "notice");
  } else {
    const room = await callOrThrow(socket, "say", line); // the ack: it went out
    show(`[${room}] ${nick}: ${line}`);
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const line = input.value.trim();
  if (!line) return;
  input.value = "";
  try {
    await run(line);
  } catch (err) { // a RemoteError from the server, or a timeout
    show(`! ${err.message}`, "error");
  }
});
// --8<-- [end:commands]
