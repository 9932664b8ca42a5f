// monGARS console: learning from users. Everyone: training consent, examples
// and ratings of replies. Admins: the review queue, dataset versions, runs
// (live from `training.run` events) and the adapter registry.
"use strict";

// ---- ratings under each reply ----------------------------------------------

window.rateButtons = (turnId) => {
  const box = el("span", { class: "rate" });
  for (const [rating, label] of [["up", "Good reply"], ["down", "Bad reply"]]) {
    // The symbol comes from the style sheet: the reply's text stays the reply.
    const b = el("button", { class: "link", type: "button", "aria-label": label, "aria-pressed": "false", "data-rating": rating });
    b.addEventListener("click", async () => {
      let correction;
      if (rating === "down") correction = prompt("A better answer (optional)") || undefined;
      try {
        const r = await api("/api/v1/conversation/turns/" + encodeURIComponent(turnId) + "/feedback", { method: "POST", json: { rating, correction } });
        for (const o of box.querySelectorAll("button")) o.setAttribute("aria-pressed", String(o === b));
        box.title = r.sample ? "Kept as a training sample (" + r.sample.status + ")" : "Thanks";
      } catch (e) { $("chat-error").textContent = e.message; }
    });
    box.append(b);
  }
  return box;
};

// ---- learning (every user) -------------------------------------------------

async function loadLearning() {
  $("learning-error").textContent = "";
  try {
    const p = await api("/api/v1/profile");
    $("consent").checked = !!p.training_consent;
  } catch (e) { $("learning-error").textContent = e.message; }
}
$("consent").addEventListener("change", async () => {
  $("learning-error").textContent = "";
  try {
    const p = await api("/api/v1/profile", { method: "PATCH", json: { training_consent: $("consent").checked } });
    $("consent").checked = !!p.training_consent;
    $("learning-status").textContent = p.training_consent ? "Training consent is on." : "Training consent is off; your samples were deleted.";
  } catch (e) { $("learning-error").textContent = e.message; loadLearning(); }
});
$("example-add").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("learning-error").textContent = "";
  try {
    const s = await api("/api/v1/training/examples", { method: "POST", json: { prompt: $("example-prompt").value, response: $("example-response").value } });
    $("example-prompt").value = $("example-response").value = "";
    $("learning-status").textContent = s.status === "held"
      ? "Example kept; it had personal data (" + s.pii.join(", ") + "), replaced, and waits for review."
      : "Example kept.";
  } catch (e) { $("learning-error").textContent = e.message; }
});

// ---- training (admins) -----------------------------------------------------

const fixed = (x, n = 2) => (typeof x === "number" ? x.toFixed(n) : "–");
async function training(f) {
  $("training-error").textContent = "";
  try { await f(); } catch (e) { $("training-error").textContent = e.message; }
}
const button = (label, onClick) => {
  const b = el("button", { class: "link", type: "button" }, label);
  b.addEventListener("click", () => training(onClick));
  return b;
};

async function loadReview() {
  const q = await api("/api/v1/admin/training/review");
  $("review-counts").textContent = q.ready + " ready, " + q.held + " held, " + q.dropped + " dropped";
  $("review").replaceChildren(...q.items.map((s) => {
    const tr = el("tr", { "data-sample": s.id });
    const td = el("td");
    for (const action of ["approve", "drop"]) {
      td.append(button(action === "approve" ? "Approve" : "Drop", async () => {
        await api("/api/v1/admin/training/review/" + s.id, { method: "POST", json: { action } });
        await loadReview();
      }));
    }
    tr.append(el("td", {}, s.prompt), el("td", {}, s.response), el("td", {}, s.pii.join(", ")), td);
    return tr;
  }));
}

async function loadDatasets() {
  const r = await api("/api/v1/admin/training/datasets");
  $("datasets").replaceChildren(...r.datasets.map((d) => {
    const tr = el("tr");
    const td = el("td");
    td.append(button("Export", async () => {
      const text = await api("/api/v1/admin/training/datasets/" + d.id + "/export");
      const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" })), download: "dataset-v" + d.version + ".jsonl" });
      a.click();
      URL.revokeObjectURL(a.href);
    }));
    tr.append(el("td", {}, "v" + d.version), el("td", {}, String(d.samples)), el("td", {}, d.train + " / " + d.held_out), el("td", {}, when(d.created_at)), td);
    return tr;
  }));
}
$("dataset-build").addEventListener("click", () => training(async () => { await api("/api/v1/admin/training/datasets", { method: "POST", json: {} }); await loadDatasets(); await loadReview(); }));

function runRow(r) {
  const f = r.figures || {};
  const tr = el("tr", { "data-run": r.id });
  const ppl = f.held_out_perplexity_before !== undefined ? fixed(f.held_out_perplexity_before) + " → " + fixed(f.held_out_perplexity_after) : "–";
  tr.append(el("td", {}, r.id.slice(0, 8)), el("td", {}, r.status + (r.pauses ? " (paused " + r.pauses + "×)" : "")),
    el("td", {}, r.steps_done + " / " + r.steps_total), el("td", {}, fixed(r.loss, 3)), el("td", {}, ppl),
    el("td", {}, fixed(r.energy_wh, 3) + " Wh"));
  return tr;
}
async function loadRuns() {
  const r = await api("/api/v1/admin/training/runs");
  $("runs").replaceChildren(...r.runs.map(runRow));
}
window.onTrainingRun = (d) => {
  const row = runRow(d.run);
  const old = $("runs").querySelector(`tr[data-run="${CSS.escape(d.run.id)}"]`);
  if (old) old.replaceWith(row); else $("runs").prepend(row);
  if (d.run.status === "succeeded") loadAdapters();
};
$("run-add").addEventListener("submit", (ev) => {
  ev.preventDefault();
  training(async () => {
    const steps = $("run-steps").value ? Number($("run-steps").value) : undefined;
    await api("/api/v1/admin/training/runs", { method: "POST", json: { steps } });
    await loadRuns();
  });
});

async function loadAdapters() {
  const r = await api("/api/v1/admin/adapters");
  $("adapter-serving").textContent = "Serving: " + (r.serving ? "adapter " + r.serving.slice(0, 8) : "the bare model");
  $("adapters").replaceChildren(...r.adapters.map((a) => {
    const m = a.metrics || {};
    const tr = el("tr", { "data-adapter": a.id });
    const td = el("td");
    const act = (label, path) => td.append(button(label, async () => { await api("/api/v1/admin/adapters/" + path, { method: "POST" }); await loadAdapters(); }));
    if (a.status === "candidate") { act("Approve", a.id + "/approve"); act("Reject", a.id + "/reject"); }
    if (a.status === "approved" || a.status === "retired") act("Activate", a.id + "/activate");
    tr.append(el("td", {}, "v" + a.version), el("td", {}, a.status),
      el("td", {}, fixed(m.held_out_perplexity_before) + " → " + fixed(m.held_out_perplexity_after)),
      el("td", {}, fixed(m.general_perplexity_before) + " → " + fixed(m.general_perplexity_after)), td);
    return tr;
  }));
}
$("adapter-rollback").addEventListener("click", () => training(async () => { await api("/api/v1/admin/adapters/rollback", { method: "POST" }); await loadAdapters(); }));

loaders.learning = loadLearning;
loaders.training = () => training(async () => { await Promise.all([loadReview(), loadDatasets(), loadRuns(), loadAdapters()]); });
