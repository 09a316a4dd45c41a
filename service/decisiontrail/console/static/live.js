// Live updates for the decisions list: new decisions from the console's SSE stream are added
// at the top (only on the first page, and only those matching the agent and kind filters).
"use strict";

(function () {
  const script = document.currentScript;
  const filters = JSON.parse(script.dataset.filters || "{}");
  const rows = document.getElementById("decision-rows");
  const status = document.getElementById("live-status");
  if (!rows || !window.EventSource) return;
  // Filters the stream cannot apply here (a subject, a model, a time range) turn live updates off.
  const local = new Set(["agent", "kind", "as_of", "cursor"]);
  if (Object.keys(filters).some((name) => !local.has(name))) return;
  let added = 0;

  function cell(text, href) {
    const td = document.createElement("td");
    if (href) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    return td;
  }

  function shown(time) {
    return time.replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  const source = new EventSource("/console/decisions/stream");
  source.addEventListener("decision", (event) => {
    const body = JSON.parse(event.data);
    const d = body.decision;
    if (filters.agent && d.agent !== filters.agent) return;
    if (filters.kind && (d.kind || "custom") !== filters.kind) return;
    const empty = rows.querySelector("tr.empty");
    if (empty) empty.remove();
    const tr = document.createElement("tr");
    tr.className = "new";
    tr.append(
      cell(shown(body.recorded_at), "/console/decisions/" + encodeURIComponent(body.id)),
      cell(body.chain), cell(String(body.sequence)), cell(d.action), cell(d.kind || "custom"),
      cell(d.model ? d.model.name : "—"), cell(String(body.log_index)));
    rows.prepend(tr);
    added += 1;
    status.hidden = false;
    status.textContent = added + " new decision" + (added === 1 ? "" : "s") + " arrived while this page was open.";
  });
  window.addEventListener("pagehide", () => source.close());
})();
