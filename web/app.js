// monGARS operator console: plain JavaScript, no framework, no network
// access beyond this server. Sign-in keeps the token in localStorage so that
// every tab of the browser shares it; replies stream over the WebSocket.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "mongars.session";
let session = JSON.parse(localStorage.getItem(KEY) || "null");
let socket = null;
let retry = 0;
let seq = 0;
const pending = []; // user messages sent from this tab, waiting for their turn id

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (session) headers.authorization = "Bearer " + session.token;
  if (options.json !== undefined) {
    headers["content-type"] = "application/json";
    options.body = JSON.stringify(options.json);
  }
  const resp = await fetch(path, { ...options, headers });
  if (resp.status === 401 && session) { logout(); throw new Error("Signed out: please sign in again"); }
  const type = resp.headers.get("content-type") || "";
  const body = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) {
    const err = new Error((body && body.detail) || resp.statusText);
    err.code = body && body.code;
    err.status = resp.status;
    throw err;
  }
  return body;
}

// ---- sign-in -------------------------------------------------------------

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    const r = await api("/api/v1/auth/login", {
      method: "POST",
      json: { username: $("username").value, password: $("password").value },
    });
    session = { token: r.access_token, admin: r.admin, username: $("username").value };
    localStorage.setItem(KEY, JSON.stringify(session));
    $("password").value = "";
    enter();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

$("logout").addEventListener("click", logout);

function logout() {
  session = null;
  localStorage.removeItem(KEY);
  if (socket) {
    const s = socket;
    socket = null;
    if (s.readyState === WebSocket.OPEN) s.send(JSON.stringify({ id: "bye", type: "close" }));
    s.close(1000);
  }
  $("messages").replaceChildren();
  $("key-secret").textContent = "";
  $("key-new").hidden = true;
  $("app-view").hidden = true;
  $("logout").hidden = true;
  $("whoami").textContent = "";
  $("login-view").hidden = false;
  setLink(false);
  $("username").focus();
}

function enter() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("logout").hidden = false;
  $("whoami").textContent = session.username + (session.admin ? " (admin)" : "");
  for (const e of document.querySelectorAll(".admin-only")) e.hidden = !session.admin;
  show("chat");
  connect();
  $("message").focus();
}

// ---- realtime --------------------------------------------------------------

function setLink(online) {
  $("link").textContent = online ? "live" : "offline";
  $("link").classList.toggle("online", online);
}

async function connect() {
  if (!session || socket) return;
  let ticket;
  try {
    ticket = (await api("/api/v1/auth/ws/ticket", { method: "POST", json: {} })).ticket;
  } catch (e) {
    $("chat-error").textContent = "Realtime unavailable: " + e.message;
    return reconnectLater();
  }
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const s = new WebSocket(scheme + location.host + "/ws/chat/?t=" + encodeURIComponent(ticket));
  socket = s;
  s.onmessage = (ev) => onFrame(JSON.parse(ev.data));
  s.onclose = (ev) => {
    if (socket !== s) return;
    socket = null;
    setLink(false);
    // 1008: this account's access was revoked (disabled, password changed).
    if (ev.code === 1008) {
      logout();
      $("login-error").textContent = "Signed out: your access was revoked";
      return;
    }
    reconnectLater();
  };
}

function reconnectLater() {
  if (!session) return;
  retry = Math.min(retry + 1, 6);
  setTimeout(connect, 250 * 2 ** retry);
}

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function onFrame(f) {
  const d = f.data || {};
  switch (f.type) {
    case "ws.connected":
      retry = 0;
      setLink(true);
      $("chat-error").textContent = "";
      break;
    case "history.snapshot":
      if ($("messages").children.length === 0) {
        for (const item of [...d.items].reverse()) turn(item.turn_id, item.query, item.response, false);
      }
      break;
    case "ai_model.response_chunk": {
      const li = assistant(d.turn_id);
      li.textContent += d.delta;
      scroll();
      break;
    }
    case "ai_model.response_complete":
      if (!d.ok) {
        const li = assistant(d.turn_id);
        li.classList.remove("streaming");
        li.classList.add("error");
        li.textContent = li.textContent || "The assistant could not answer (" + d.error + ").";
      }
      break;
    case "chat.message":
      turn(d.turn_id, d.query, d.response, true);
      break;
    case "training.run":
      if (window.onTrainingRun) window.onTrainingRun(d);
      break;
    case "ping":
      send({ id: f.id, type: "pong" });
      break;
    case "ack":
      if (f.payload && f.payload.status === "error") {
        $("chat-error").textContent = "Not sent: " + f.payload.detail;
        const li = pending.find((p) => p.dataset.frame === f.id);
        if (li) { li.classList.add("error"); pending.splice(pending.indexOf(li), 1); }
      }
      break;
  }
}

function scroll() {
  const list = $("messages");
  if (list.lastElementChild) list.lastElementChild.scrollIntoView({ block: "end" });
}

function find(kind, id) {
  return id ? $("messages").querySelector(`li.${kind}[data-turn="${CSS.escape(id)}"]`) : null;
}

/// The reply bubble of a turn, created (after its question) when new.
function assistant(id) {
  let li = find("assistant", id);
  if (li) return li;
  let user = find("user", id) || pending.shift();
  if (!user) {
    user = el("li", { class: "user" }, "…");
    $("messages").append(user);
  }
  user.dataset.turn = id;
  li = el("li", { class: "assistant streaming", "data-turn": id }, "");
  user.after(li);
  return li;
}

function turn(id, query, response, live) {
  const li = assistant(id);
  li.classList.remove("streaming");
  li.textContent = response;
  find("user", id).textContent = query;
  if (window.rateButtons) li.append(window.rateButtons(id));
  if (live) scroll();
}

$("chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("message").value.trim();
  if (!text) return;
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    $("chat-error").textContent = "Not connected yet; try again in a moment.";
    return;
  }
  const id = "m" + ++seq;
  const li = el("li", { class: "user", "data-frame": id }, text);
  $("messages").append(li);
  pending.push(li);
  send({ id, type: "chat.send", payload: { message: text } });
  $("message").value = "";
  $("chat-error").textContent = "";
  scroll();
});

$("message").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) {
    ev.preventDefault();
    $("chat-form").requestSubmit();
  }
});

// ---- panels ----------------------------------------------------------------

const loaders = { history: loadHistory, memories: loadMemories, keys: loadKeys, users: loadUsers, backends: loadBackends, metrics: loadMetrics };

function show(name) {
  for (const tab of document.querySelectorAll("nav [role=tab]")) {
    const on = tab.dataset.panel === name;
    tab.setAttribute("aria-selected", on);
    tab.tabIndex = on ? 0 : -1;
    $("panel-" + tab.dataset.panel).hidden = !on;
  }
  if (loaders[name]) loaders[name]();
}

const tabs = () => [...document.querySelectorAll("nav [role=tab]")].filter((t) => !t.hidden);
for (const tab of document.querySelectorAll("nav [role=tab]")) {
  tab.addEventListener("click", () => show(tab.dataset.panel));
  tab.addEventListener("keydown", (ev) => {
    const list = tabs();
    const i = list.indexOf(tab);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
    if (step) {
      const next = list[(i + step + list.length) % list.length];
      next.focus();
      show(next.dataset.panel);
    }
  });
}

async function loadHistory() {
  const items = await api("/api/v1/conversation/history?limit=50");
  $("history").replaceChildren(...items.map((t) => {
    const li = el("li");
    li.append(el("div", { class: "meta" }, new Date(t.timestamp).toLocaleString()));
    li.append(el("strong", {}, t.query), el("div", {}, t.response || "(no reply)"));
    return li;
  }));
}
$("history-refresh").addEventListener("click", loadHistory);

async function loadMemories() {
  $("memory-error").textContent = "";
  const q = $("memory-q").value.trim();
  let items;
  try {
    items = await api("/api/v1/memories" + (q ? "?q=" + encodeURIComponent(q) : ""));
  } catch (e) {
    if (e.code === "feature.disabled") { $("memories-tab").hidden = true; show("chat"); return; }
    $("memory-error").textContent = e.message;
    return;
  }
  $("memories").replaceChildren(...items.map((m) => {
    const li = el("li");
    const text = el("span", {}, m.text);
    const edit = el("button", { class: "link", type: "button" }, "Edit");
    const del = el("button", { class: "link", type: "button" }, "Delete");
    edit.addEventListener("click", async () => {
      const next = prompt("Edit memory", m.text);
      if (next && next.trim() !== m.text) await act(() => api("/api/v1/memories/" + m.id, { method: "PATCH", json: { text: next } }));
    });
    del.addEventListener("click", async () => {
      if (confirm("Forget this?\n" + m.text)) await act(() => api("/api/v1/memories/" + m.id, { method: "DELETE" }));
    });
    li.append(text, " ", edit, del);
    if (m.score !== undefined) li.append(el("span", { class: "meta" }, " " + m.score.toFixed(2)));
    return li;
  }));
}
async function act(f) {
  try { await f(); } catch (e) { $("memory-error").textContent = e.message; }
  loadMemories();
}
$("memory-search").addEventListener("submit", (ev) => { ev.preventDefault(); loadMemories(); });
$("memory-add").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await act(() => api("/api/v1/memories", { method: "POST", json: { text: $("memory-text").value } }));
  $("memory-text").value = "";
});

const when = (t, none) => (t ? new Date(t).toLocaleString() : none);

async function loadKeys() {
  $("key-error").textContent = "";
  let r;
  try { r = await api("/api/v1/auth/keys"); } catch (e) { $("key-error").textContent = e.message; return; }
  $("keys").replaceChildren(...r.keys.map((k) => {
    const tr = el("tr");
    const prefix = el("td");
    prefix.append(el("code", {}, k.prefix + "…"));
    tr.append(el("td", {}, k.name), prefix,
      el("td", {}, when(k.created_at, "")), el("td", {}, when(k.last_used_at, "never")),
      el("td", {}, when(k.expires_at, "never")));
    const revoke = el("button", { class: "link", type: "button" }, "Revoke");
    revoke.addEventListener("click", async () => {
      if (!confirm("Revoke " + k.name + "? Whatever uses it stops working at once.")) return;
      try { await api("/api/v1/auth/keys/" + encodeURIComponent(k.id), { method: "DELETE" }); }
      catch (e) { $("key-error").textContent = e.message; }
      loadKeys();
    });
    const actions = el("td");
    actions.append(revoke);
    tr.append(actions);
    return tr;
  }));
}
$("key-add").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("key-error").textContent = "";
  const days = $("key-days").value.trim();
  try {
    const made = await api("/api/v1/auth/keys", { method: "POST", json: { name: $("key-name").value, ...(days ? { expires_in_days: Number(days) } : {}) } });
    $("key-secret").textContent = made.key;
    $("key-new").hidden = false;
    $("key-name").value = $("key-days").value = "";
  } catch (e) { $("key-error").textContent = e.message; }
  loadKeys();
});

async function loadUsers() {
  const r = await api("/api/v1/user/list");
  $("users").replaceChildren(...r.details.map((u) => {
    const tr = el("tr");
    tr.append(el("td", {}, u.username), el("td", {}, u.is_admin ? "admin" : "user"),
      el("td", {}, u.disabled ? "disabled" : "active"),
      el("td", {}, u.last_login_at ? new Date(u.last_login_at).toLocaleString() : "never"));
    const td = el("td");
    if (u.username !== session.username) {
      const b = el("button", { class: "link", type: "button" }, u.disabled ? "Enable" : "Disable");
      b.addEventListener("click", async () => {
        try { await api("/api/v1/user/" + encodeURIComponent(u.username), { method: "PATCH", json: { disabled: !u.disabled } }); }
        catch (e) { $("user-error").textContent = e.message; }
        loadUsers();
      });
      td.append(b);
    }
    tr.append(td);
    return tr;
  }));
}
$("user-add").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("user-error").textContent = "";
  try {
    await api("/api/v1/user/register", { method: "POST", json: { username: $("new-username").value, password: $("new-password").value } });
    $("new-username").value = $("new-password").value = "";
  } catch (e) { $("user-error").textContent = e.message; }
  loadUsers();
});

async function loadBackends() {
  const h = await api("/llm/health");
  $("llm-status").textContent = "Generation: " + h.status;
  $("backends").replaceChildren(...h.backends.map((b) => {
    const tr = el("tr");
    tr.append(el("td", {}, b.name + " (" + b.kind + ")"), el("td", {}, b.model), el("td", {}, b.breaker),
      el("td", {}, String(b.active ?? "")), el("td", {}, b.healthy ? "up" : b.detail || b.last_error || "down"));
    return tr;
  }));
}
$("backends-refresh").addEventListener("click", loadBackends);

/// Sum each metric family of interest from the Prometheus text.
async function loadMetrics() {
  const text = await api("/metrics");
  const sums = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const name = line.split(/[{ ]/)[0];
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) sums[name] = (sums[name] || 0) + value;
  }
  const shown = [
    ["HTTP requests", "mongars_http_requests_total"],
    ["Open sockets", "mongars_ws_connections"],
    ["Socket frames sent", "mongars_ws_frames_sent_total"],
    ["Sockets closed", "mongars_ws_closed_total"],
    ["Generation requests", "mongars_llm_requests_total"],
    ["Tokens", "mongars_llm_tokens_total"],
    ["Backend errors", "mongars_llm_errors_total"],
    ["Failovers", "mongars_llm_failovers_total"],
  ];
  $("metrics").replaceChildren(...shown.flatMap(([label, key]) => [el("dt", {}, label), el("dd", {}, String(sums[key] ?? 0))]));
}
$("metrics-refresh").addEventListener("click", loadMetrics);

// ---- start -----------------------------------------------------------------

if (session) enter();
performance.mark("interactive");
window.monGARS = { ready: true, interactiveMs: performance.now() };
