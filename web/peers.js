// monGARS console: peers (admins). This node's id and load, the peers it
// knows with their state and last load, registration and removal.
"use strict";

async function loadPeers() {
  $("peers-error").textContent = "";
  try {
    const [list, load] = await Promise.all([api("/api/v1/peer/list"), api("/api/v1/peer/load")]);
    $("peer-self").textContent = "This node: " + list.node_id + " · load " + load.load_factor.toFixed(2)
      + " (" + load.active_workers + " running, " + load.queue_depth + " waiting, " + load.concurrency + " at once) · "
      + load.tokens_per_second.toFixed(1) + " tokens/s";
    $("peers").replaceChildren(...list.peers.map((p) => {
      const l = p.last_load;
      const remove = el("button", { class: "link", type: "button" }, "Remove");
      remove.addEventListener("click", async () => {
        if (!confirm("Stop handing work to " + p.url + " and refuse its calls?")) return;
        try {
          await api("/api/v1/peer/unregister", { method: "POST", json: { url: p.url } });
          loadPeers();
        } catch (e) { $("peers-error").textContent = e.message; }
      });
      const row = el("tr", { "data-url": p.url });
      const actions = el("td");
      actions.append(remove);
      row.append(
        el("td", {}, p.url),
        el("td", { class: "meta", title: p.fingerprint }, p.fingerprint.slice(0, 16) + "…"),
        el("td", { class: p.state === "up" ? "" : "error" }, p.state),
        el("td", {}, p.last_seen ? new Date(p.last_seen).toLocaleTimeString() : "never"),
        el("td", {}, l ? l.load_factor.toFixed(2) + " (" + l.active_workers + "+" + l.queue_depth + "/" + l.concurrency + ")" : "–"),
        el("td", {}, String(p.handed_off)),
        actions,
      );
      return row;
    }));
  } catch (e) { $("peers-error").textContent = e.message; }
}

$("peer-add").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("peers-error").textContent = "";
  try {
    await api("/api/v1/peer/register", { method: "POST", json: { url: $("peer-url").value, fingerprint: $("peer-fingerprint").value } });
    $("peer-url").value = $("peer-fingerprint").value = "";
    loadPeers();
  } catch (e) { $("peers-error").textContent = e.message; }
});

loaders.peers = loadPeers;
