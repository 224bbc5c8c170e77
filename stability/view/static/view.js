// stability view: the pages, rendered from the server's JSON endpoints. Plain JavaScript, no build step.
// Every text from the store is inserted as text (never as HTML); the report's figures come as SVG images. The routes live in the URL's hash:
// #/experiments, #/experiment/ID, #/live/ID, #/runs, #/run/ID, #/step/RUN/N, #/call/ID, #/graph?..., #/search?q=
"use strict";

const PAGE = 50;
let poller = null;

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

function add(parent, ...kids) {
  parent.append(h("div", {}, ...kids));
}

async function api(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

const enc = encodeURIComponent;
const link = (href, text) => h("a", { href }, text);
const short = (id) => (id && id.startsWith("sha256:") ? id.slice(7, 19) : id);
const num = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits).replace(/\.?0+$/, ""));
const money = (x) => "$" + Number(x || 0).toFixed(4);
const when = (t) => (t ? String(t).replace("T", " ").slice(0, 19) : "");

function table(headers, rows, attrs) {
  return h("table", attrs || {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell) => h("td", {}, cell))))));
}

function pager(page, base) {
  const { total, offset, limit } = page;
  const sep = base.includes("?") ? "&" : "?";
  return h("div", { class: "pager" },
    `${total ? offset + 1 : 0}–${Math.min(offset + limit, total)} of ${total} `,
    offset > 0 ? link(`${base}${sep}offset=${Math.max(0, offset - limit)}`, "‹ previous") : null, " ",
    offset + limit < total ? link(`${base}${sep}offset=${offset + limit}`, "next ›") : null);
}

function states(counts) {
  return Object.entries(counts || {}).map(([k, v]) => h("span", { class: `state-${k}` }, `${k} ${v} `));
}

// -- pages ------------------------------------------------------------------------------------------------

async function experimentsPage(main) {
  const { experiments } = await api("/api/experiments");
  add(main, h("h1", {}, "Experiments"));
  if (!experiments.length) add(main, h("p", { class: "muted" }, "No experiments in this store (see Runs)."));
  else add(main, table(["experiment", "cells", "done", "running", "failed", "not started", "paid calls", "cost",
    "created", ""], experiments.map((e) => [
    h("a", { href: `#/experiment/${enc(e.id)}`, class: "experiment-link" }, e.name), e.cells, e.done, e.running,
    e.failed, e.not_started, e.paid_calls, money(e.cost_usd), when(e.created_at),
    h("span", {}, link(`#/live/${enc(e.id)}`, "live"), " · ", link(`#/graph?experiment=${enc(e.id)}`, "graph"))]),
  { id: "experiments" }));
}

async function experimentPage(main, id, params) {
  const offset = Number(params.get("offset") || 0);
  const e = await api(`/api/experiments/${enc(id)}?offset=${offset}&limit=${PAGE}`);
  const t = e.totals;
  add(main, h("h1", {}, `Experiment ${e.name}`),
    h("p", { class: "muted" }, `${e.id} · ${e.cells} cells · ${e.replicates} per combination · spec `,
      e.spec_path || "–", " · created ", when(e.created_at)),
    h("p", {}, states(e.states), " · ", link(`#/live/${enc(e.id)}`, "live progress"), " · ",
      link(`#/graph?experiment=${enc(e.id)}`, "revision graph")),
    h("p", {}, `${t.calls} calls (${t.paid} paid, ${t.failed} failed) · tokens ${t.input_tokens} in / `,
      `${t.output_tokens} out · cost ${money(t.cost_usd)}`),
    h("h2", {}, "Factors"),
    table(["factor", "values", ""], Object.entries(e.factors).map(([name, values]) => [name,
      values.map((v) => (v === null ? "–" : String(v))).join(", ")
        + (e.factor_counts[name] > values.length ? `, … (${e.factor_counts[name]} values)` : ""),
      e.varied.includes(name) ? "varied" : ""])),
    h("h2", {}, "Analysis groups", e.group_by.length ? ` (by ${e.group_by.join(", ")})` : " (all runs)"));
  const groups = h("div", { id: "groups" }, h("p", { class: "muted" }, "computing the analysis…"));
  const findings = h("div", { id: "findings" }, h("p", { class: "muted" }, "computing the findings…"));
  add(main, groups, h("h2", {}, "Findings"), findings, h("h2", {}, "Cells"), pager(e.cell_page, `#/experiment/${enc(e.id)}`),
    table(["#", "state", "run", "steps", "calls", "stop", ...e.varied], e.cell_page.rows.map((c) => [
      c.position, h("span", { class: `state-${c.status}` }, c.status),
      c.run_id ? h("a", { href: `#/run/${enc(c.run_id)}`, class: "run-link" }, c.run_id) : "–", c.steps, c.calls,
      c.stop_reason || "", ...e.varied.map((f) => String(c.factors[f] ?? "–"))]), { id: "cells" }));
  loadGroups(groups, e).catch((err) => groups.replaceChildren(h("p", { class: "error" }, err.message)));
  loadFindings(findings, e).catch((err) => findings.replaceChildren(h("p", { class: "error" }, err.message)));
}

// The methodology's questions (`stability findings`): the report's figures (data: SVG images) and estimates.
async function loadFindings(box, e) {
  const f = await api(`/api/experiments/${enc(e.id)}/findings`);
  box.replaceChildren(h("p", { class: "muted" }, `95% intervals; p-values adjusted by ${f.adjust}`),
    ...f.questions.map((q) => h("section", { class: "finding", id: `finding-${q.question}` }, h("h3", {}, q.title),
      ...q.figures.map((src) => h("img", { src, alt: q.title, class: "finding-figure" })), table(f.headers, q.rows))),
    f.unanswerable.length ? h("ul", { id: "unanswerable" }, f.unanswerable.map((u) => h("li", {},
      `${u.question}: cannot answer: ${u.reason}`))) : "");
}

async function loadGroups(box, e) {
  const g = await api(`/api/experiments/${enc(e.id)}/groups`);
  const parts = [h("p", { class: "muted" }, `embedder ${g.embedder} · 95% intervals over starting constitutions `
    + "(rates: Wilson-t, Wilson over runs with one start; ratio: jackknife over starts)"),
    table(["group", "runs", "starts", "models", "fixed points", "cycles", "unsettled", "no verdict",
      "fixed-point rate (judged)", "fixed-point rate (started)", "cycle rate", "KM median steps to fixed point",
      "convergence ratio between starts (null p · null range)", "attractors", ""],
    g.groups.map((x) => [x.label || "all runs", x.runs, x.starts, x.models, x.verdicts.fixed_point, x.verdicts.cycle,
      x.verdicts.unsettled, x.no_verdict, x.text.fixed_point_rate, x.text.fixed_point_rate_started, x.text.cycle_rate,
      x.text.steps_to_fixed_point, x.text.convergence_ratio,
      x.attractors, link(`#/graph?experiment=${enc(e.id)}&group=${x.index}`, "graph")]), { id: "group-table" }),
    ...g.warnings.map((w) => h("p", { class: "warning" }, `warning: ${w}`))];
  const risks = g.groups.filter((x) => x.text.incidence);
  if (risks.length) {
    parts.push(h("h3", {}, "Competing risks (Aalen–Johansen)"), h("ul", { id: "incidence" },
      risks.map((x) => h("li", {}, `${x.label || "all runs"} · ${x.text.incidence}`))));
  }
  if (g.contrasts.length) {
    parts.push(h("h3", {}, `Contrasts (a − b): effect [95% CI] p (p adjusted, ${g.adjust})`),
      table(["a", "b", "paired", "fixed-point rate (judged)", "fixed-point rate (started)", "KM median steps",
        "convergence ratio", "clashes resolved"],
      g.contrasts.map((c) => [c.text.a, c.text.b, c.text.paired, c.text.fixed_point_rate,
        c.text.fixed_point_rate_started, c.text.steps_to_fixed_point, c.text.convergence_ratio,
        c.text.clash_resolution]), { id: "contrast-table" }));
    const risky = g.contrasts.filter((c) => c.text.incidence);
    if (risky.length) {
      parts.push(h("p", {}, `Competing risks, a − b (p adjusted, ${g.adjust}, in the same family):`),
        h("ul", { id: "incidence-contrasts" }, risky.map((c) => h("li", {}, `${c.text.a} − ${c.text.b} · ${c.text.incidence}`))));
    }
  }
  if (g.contrasts_total > g.contrasts.length) {
    parts.push(h("p", { class: "warning" }, `${g.contrasts.length} of ${g.contrasts_total} contrasts shown`));
  }
  box.replaceChildren(...parts);
  const figures = h("div", { id: "group-figures" }, h("p", { class: "muted" }, "drawing the figures…"));
  box.append(h("h3", {}, "Figures (as in the report)"), figures);
  const f = await api(`/api/experiments/${enc(e.id)}/figures`);
  figures.replaceChildren(...(f.figures.length ? f.figures.map((x) => h("figure", { class: "figure", "data-name": x.name },
    h("img", { alt: x.name, src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(x.svg)}` })))
    : [h("p", { class: "muted" }, "no figures: no group has judged runs")]));
}

async function livePage(main, id) {
  const box = h("div", { id: "live" });
  add(main, h("h1", {}, "Live"), box);
  const tick = async () => {
    const p = await api(`/api/experiments/${enc(id)}/progress?limit=${PAGE}`);
    const s = p.source;
    const done = !(p.states.running || p.states.not_started);
    box.replaceChildren(h("h2", {}, `${p.name} `, link(`#/experiment/${enc(p.id)}`, "(experiment)")),
      h("div", { class: "bar" }, h("div", { style: `width:${Math.round(100 * p.share)}%` })),
      h("p", { id: "live-count" }, `${p.finished} of ${p.cells} cells finished · `, states(p.states)),
      h("p", {}, `${p.totals.calls} calls · ${p.totals.input_tokens + p.totals.output_tokens} tokens · `,
        `cost ${money(p.totals.cost_usd)}`),
      h("p", { class: "muted" }, s.writing ? `a run is writing; reading its snapshot of ${s.age_s} s ago`
        : `no run is writing (read ${s.age_s} s ago)`, done ? " · finished" : " · updating every 2 s"),
      table(["#", "state", "run", "steps", "calls", "stop"], p.cell_page.rows.map((c) => [c.position,
        h("span", { class: `state-${c.status}` }, c.status), c.run_id ? link(`#/run/${enc(c.run_id)}`, c.run_id) : "–",
        c.steps, c.calls, c.stop_reason || ""])));
    document.body.dataset.live = String(p.finished);
  };
  await tick();
  poller = setInterval(() => tick().catch((err) => box.prepend(h("p", { class: "error" }, err.message))), 2000);
}

async function runsPage(main, params) {
  const offset = Number(params.get("offset") || 0);
  const page = await api(`/api/runs?offset=${offset}&limit=${PAGE}`);
  add(main, h("h1", {}, "Runs"), pager(page, "#/runs"),
    table(["run", "protocol", "model", "status", "stop", "steps", "calls", "created"], page.rows.map((r) => [
      link(`#/run/${enc(r.id)}`, r.id), r.protocol, r.model, r.status, r.stop_reason || "", r.steps, r.calls,
      when(r.created_at)])));
}

function diffLines(step) {
  if (step.text) return h("pre", { class: "diff" }, step.text.map((p) => `  ${p}`).join("\n"));
  if (!step.diff.length) return h("span", { class: "muted" }, step.decision === "changed" ? "reordered" : "no change");
  return h("pre", { class: "diff" }, step.diff.map((line) =>
    h("span", { class: line.startsWith("+") ? "add" : "del" }, line + "\n")));
}

async function runPage(main, id, params) {
  const offset = Number(params.get("offset") || 0);
  const v = await api(`/api/runs/${enc(id)}?offset=${offset}&limit=200`);
  const r = v.run;
  const t = v.totals;
  add(main, h("h1", {}, `Run ${r.id}`),
    h("p", {}, `${r.protocol} · ${r.model} · seed ${r.seed} · `, h("span", { class: `state-${r.status}` }, r.status),
      ` · stop ${r.stop_reason || "–"}`, v.experiment ? h("span", {}, " · experiment ",
        link(`#/experiment/${enc(v.experiment)}`, v.experiment)) : null,
      " · ", link(`#/graph?runs=${enc(r.id)}`, "graph")),
    h("p", { class: "muted" }, `stability ${r.package_version} · commit ${r.git_commit || "–"} · created `,
      when(r.created_at), ` · finished ${when(r.finished_at) || "–"}`),
    h("p", {}, `${t.calls} calls (${t.paid} paid, ${t.failed} failed) · tokens ${t.input_tokens} in / `,
      `${t.output_tokens} out · cost ${money(t.cost_usd)}`),
    r.error ? h("p", { class: "error" }, r.error) : null,
    h("h2", {}, "Chain"), pager(v.steps, `#/run/${enc(r.id)}`),
    table(["step", "decision", "constitution", "change", "calls", ...(v.has_judgements ? ["judgements"] : [])],
      v.steps.rows.map((s) => [
        h("a", { href: `#/step/${enc(r.id)}/${s.step}`, id: `step-${s.step}` }, s.step),
        h("span", {}, s.decision, s.cycle_to ? ` (returns to ${s.cycle_to})` : "", s.detail ? h("div",
          { class: "muted" }, s.detail) : null),
        h("span", { title: s.constitution_hash }, short(s.constitution_hash), ` · ${s.n_principles}`),
        diffLines(s),
        h("span", {}, s.calls.map((c) => h("div", {}, h("a", { href: `#/call/${enc(c.id)}`, class: "call-link" },
          c.purpose), ` · ${c.status} · ${c.input_tokens}/${c.output_tokens} tok · ${money(c.cost_usd)}`,
          c.attempts > 1 ? ` · ${c.attempts} attempts` : ""))),
        ...(v.has_judgements ? [h("span", {}, s.judgements.map((j) => h("div", { title: j.rationale ?? "" },
          `${j.question}: ${j.verdict ?? "no judgement"}${j.how ? ` (${j.how})` : ""} · ${j.judge_model}`)))] : [])]),
      { id: "chain" }));
}

async function stepPage(main, run, step) {
  const v = await api(`/api/runs/${enc(run)}/steps/${enc(step)}`);
  add(main, h("h1", {}, `Run `, link(`#/run/${enc(run)}`, run), ` · step ${step}`),
    table(["call", "purpose", "status", "tokens in/out", "cost", "attempts", "latency ms", "thinking"],
      v.calls.map((c) => [link(`#/call/${enc(c.id)}`, c.id), c.purpose, c.status,
        `${c.input_tokens}/${c.output_tokens}`, money(c.cost_usd), c.attempts, num(c.latency_ms, 0),
        c.has_thinking ? "yes" : ""])),
    h("h2", {}, "Judgements"), v.judgements.length ? h("pre", {}, JSON.stringify(v.judgements, null, 2))
      : h("p", { class: "muted" }, "none stored"));
}

async function callPage(main, id) {
  const v = await api(`/api/calls/${enc(id)}`);
  const c = v.call;
  const messages = (c.request && (c.request.messages || [])) || [];
  add(main, h("h1", {}, `Call ${c.id}`),
    table(["run", "step", "purpose", "model", "status", "attempts", "latency ms", "tokens in/out", "cost",
      "finish", "format", "cached from"], [[link(`#/run/${enc(c.run_id)}`, c.run_id),
      link(`#/step/${enc(c.run_id)}/${c.step}`, c.step), c.purpose, c.model, c.status, c.attempts,
      num(c.latency_ms, 0), `${c.input_tokens}/${c.output_tokens}`, money(c.cost_usd),
      (c.finish_reason || "–") + (v.truncated ? " (cut off)" : ""),
      (c.answer_format || "–") + (c.fallback_reason ? ` (${c.fallback_reason})` : ""),
      c.cached_from ? link(`#/call/${enc(c.cached_from)}`, c.cached_from) : "–"]], { id: "call-meta" }),
    c.error ? h("p", { class: "error" }, c.error) : null,
    c.retries.length ? h("div", {}, h("h2", {}, "Failed attempts"), table(["error", "status", "waited s"],
      c.retries.map((x) => [x.error, x.status ?? "–", num(x.wait_s ?? x.waited_s, 2)]))) : null,
    h("h2", {}, "Request"),
    messages.map((m) => h("div", {}, h("strong", {}, m.role),
      h("pre", { class: "message" }, typeof m.content === "string" ? m.content : JSON.stringify(m.content, null, 2)))),
    h("details", {}, h("summary", {}, "whole request body"), h("pre", { id: "request" },
      JSON.stringify(c.request, null, 2))),
    c.thinking ? h("div", {}, h("h2", {}, "Thinking"), h("pre", { id: "thinking" }, c.thinking)) : null,
    h("h2", {}, "Answer"), h("pre", { id: "answer" }, c.text ?? "(no text)"),
    h("details", {}, h("summary", {}, "whole response body"), h("pre", { id: "response" },
      JSON.stringify(c.response, null, 2))));
}

async function searchPage(main, params) {
  const q = params.get("q") || "";
  const offset = Number(params.get("offset") || 0);
  const input = h("input", { id: "q", type: "search", value: q, size: 50, placeholder: "words of a principle" });
  add(main, h("h1", {}, "Search principles"), h("form", {
    id: "search", onsubmit: (ev) => { ev.preventDefault(); location.hash = `#/search?q=${enc(input.value)}`; },
  }, input, " ", h("button", { type: "submit" }, "Search")));
  if (!q) return;
  const v = await api(`/api/search?q=${enc(q)}&offset=${offset}&limit=${PAGE}`);
  add(main, pager(v, `#/search?q=${enc(q)}`), table(["principle", "constitutions", "runs", "appears in"],
    v.rows.map((row) => [row.text, row.constitutions, row.runs, h("span", {}, row.appears.map((a) => h("div", {},
      link(`#/run/${enc(a.run_id)}?offset=${a.step}`, `${a.run_id} step ${a.step}`), ` (principle ${a.position + 1}) `,
      link(`#/graph?runs=${enc(a.run_id)}&node=${enc(a.constitution_hash)}`, "graph"))))]), { id: "results" }));
}

// -- the graph --------------------------------------------------------------------------------------------

// Zoom at which a node's label (8 px) is drawn 10 px high: a small graph, which fits the canvas at a far larger zoom,
// is shown at this one, so its labels keep a size that suits its few nodes instead of filling the canvas.
const MAX_FIT_ZOOM = 1.25;

const GRAPH_STYLE = [
  { selector: "node", style: { "background-color": "#8aa4bd", label: "data(label)", "font-size": 8, color: "#445", "text-wrap": "ellipsis",
    "text-max-width": 160, "min-zoomed-font-size": 7,
    width: "mapData(runs, 1, 20, 10, 34)", height: "mapData(runs, 1, 20, 10, 34)" } },
  { selector: "node.start", style: { "background-color": "#2f7d4a" } },
  { selector: "node.merge", style: { shape: "diamond", "background-color": "#7b4bb7", "border-width": 3,
    "border-color": "#7b4bb7" } },
  { selector: "node.cycle", style: { "border-width": 3, "border-color": "#c0392b" } },
  { selector: "node.fixed", style: { shape: "star", "background-color": "#d4a017" } },
  { selector: "edge", style: { width: "mapData(runs, 1, 20, 1, 6)", "line-color": "#b9c5d0", "curve-style": "bezier",
    "target-arrow-shape": "triangle", "target-arrow-color": "#b9c5d0", "arrow-scale": 0.7 } },
  { selector: "edge.cycle", style: { "line-color": "#c0392b", "target-arrow-color": "#c0392b", "line-style": "dashed" } },
  { selector: "node.more", style: { shape: "round-rectangle", "background-color": "#e8ecf0", "border-width": 1,
    "border-style": "dashed", "border-color": "#8a96a3", width: 34, height: 14, "font-size": 7,
    color: "#445", "text-valign": "center", "text-halign": "center" } },
  { selector: "edge.more", style: { width: 1, "line-style": "dashed", "line-color": "#c9d1d9", "target-arrow-shape": "none",
    "curve-style": "straight" } },
  { selector: ".faded", style: { opacity: 0.12 } },
  { selector: "node:selected", style: { "border-width": 4, "border-color": "#111" } },
];

function label(n) {
  const first = n.first.length > 28 ? `${n.first.slice(0, 27)}…` : n.first;
  return `${first}${n.n_principles > 1 ? ` (+${n.n_principles - 1})` : ""}`;
}

function cytoscapeLoaded() {  // the bundled library, loaded by the graph page only
  if (window.cytoscape) return Promise.resolve();
  return new Promise((resolve, reject) => {
    document.head.append(h("script", { src: "/static/cytoscape.min.js", onload: resolve,
      onerror: () => reject(new Error("cytoscape.js did not load")) }));
  });
}

// A view of more than this many nodes is laid out in columns by earliest step (fast: no forces); fewer, by forces.
const FORCES_UP_TO = 30;
let linkMore = true;  // a "+N" node joined to its node by an edge: under forces only (in columns it sits beside it)
const NEXT_PAGE = 25;  // what one click on a "+N" node adds

// Columns by the earliest step a run reached a node, most important first in each; a tall column wraps into several.
function columns(nodes) {
  const ROWS = 16, DX = 190, DY = 36, WRAP = 130;
  const byDepth = new Map();
  for (const n of nodes) {
    if (!byDepth.has(n.depth)) byDepth.set(n.depth, []);
    byDepth.get(n.depth).push(n);
  }
  const at = {};
  let x = 0;
  for (const depth of [...byDepth.keys()].sort((a, b) => a - b)) {
    const column = byDepth.get(depth);
    const rows = Math.min(column.length, ROWS);
    column.forEach((n, i) => { at[n.node] = { x: x + Math.floor(i / ROWS) * WRAP, y: (i % ROWS - (rows - 1) / 2) * DY }; });
    x += Math.floor((column.length - 1) / ROWS) * WRAP + DX;
  }
  return at;
}

const nodeClasses = (n) => [n.starts && "start", n.merge && "merge", n.cycles && "cycle", n.fixed && "fixed"]
  .filter(Boolean).join(" ");
const nodeData = (n) => ({ id: n.node, label: label(n), runs: n.runs });
// the "+N" node beside a node: its successors the view leaves out, a page of them per click
const moreNode = (n, offset) => ({ data: { id: `more>${n.node}`, of: n.node, label: `+${n.more - offset}`,
  offset, total: n.more, runs: 1 }, classes: "more" });
const moreEdge = (n) => ({ data: { id: `more>${n.node}>`, source: n.node, target: `more>${n.node}`, runs: 1 },
  classes: "more" });
const edgeData = (e) => ({ data: { id: `${e.source}>${e.target}`, source: e.source, target: e.target, runs: e.runs },
  classes: e.cycle ? "cycle" : "" });

async function graphPage(main, params) {
  await cytoscapeLoaded();
  const query = new URLSearchParams();
  for (const k of ["experiment", "runs", "group", "by", "max_nodes"]) if (params.get(k)) query.set(k, params.get(k));
  const g = await api(`/api/graph?${query}`);
  const panel = h("div", { id: "node-panel" }, h("p", { class: "muted" },
    "Click a node for its text and runs; click a “+N” node to draw the next constitutions the view leaves out."));
  const box = h("div", { id: "cy" });
  const chip = (name, cls) => h("button", { type: "button", "data-highlight": cls, onclick: (ev) => {
    const on = !ev.target.classList.contains("on");
    document.querySelectorAll(".chips button").forEach((b) => b.classList.remove("on"));
    window.cy.elements().removeClass("faded");
    if (on) {
      ev.target.classList.add("on");
      const hit = window.cy.nodes(`.${cls}`);
      window.cy.elements().not(hit.union(hit.connectedEdges())).addClass("faded");
    }
  } }, name);
  add(main, h("h1", {}, "Revision graph"),
    h("p", {}, `${g.runs} runs · ${g.total_nodes} constitutions · ${g.total_edges} transitions`,
      g.truncated ? h("strong", { id: "graph-cut" }, ` · showing the ${g.nodes.length} most important (starts, `
        + "fixed points, merges and cycle targets first, then the most visited); “+N” nodes lead to the rest") : "",
      g.truncated && g.nodes.length < 1000 ? h("span", {}, " · ", link(`${location.hash.replace(/&max_nodes=\d+/, "")}`
        + "&max_nodes=1000", "show up to 1,000")) : ""),
    h("p", { class: "chips" }, "highlight: ", chip(`merges (${g.counts.merges})`, "merge"), " ",
      chip(`cycles (${g.counts.cycles})`, "cycle"), " ", chip(`fixed points (${g.counts.fixed_points})`, "fixed"), " ",
      chip(`starts (${g.counts.starts})`, "start")),
    h("p", { class: "legend muted" }, h("span", {}, h("i", { class: "swatch", style: "background:#2f7d4a" }), "start"),
      h("span", {}, h("i", { class: "swatch", style: "background:#7b4bb7" }), "merge (diamond, purple ring)"),
      h("span", {}, h("i", { class: "swatch", style: "background:#d4a017" }), "fixed point (star)"),
      h("span", {}, h("i", { class: "swatch", style: "border:2px solid #c0392b" }), "cycle target; dashed: return"),
      h("span", {}, h("i", { class: "swatch", style: "background:#e8ecf0;border:1px dashed #8a96a3" }),
        "+N: successors not drawn"),
      "· size: runs through it · scroll to zoom, drag to pan"),
    h("div", { id: "graph-wrap" }, box, panel));
  const forces = g.nodes.length + g.nodes.filter((n) => n.more).length <= FORCES_UP_TO;
  const at = forces ? {} : columns(g.nodes);
  linkMore = forces;
  const beside = (digest) => (at[digest] ? { x: at[digest].x + 55, y: at[digest].y + 16 } : undefined);
  const elements = [
    ...g.nodes.map((n) => ({ data: nodeData(n), classes: nodeClasses(n), position: at[n.node] })),
    ...g.nodes.filter((n) => n.more).flatMap((n) => [{ ...moreNode(n, 0), position: beside(n.node) },
      ...(forces ? [moreEdge(n)] : [])]),
    ...g.edges.map(edgeData),
  ];
  if (g.hidden_starts) {
    const bottom = Math.max(0, ...Object.values(at).map((p) => p.y)) + 60;
    elements.push({ data: { id: "more>starts", label: `+${g.hidden_starts} starts`, offset: 0, total: g.hidden_starts,
      runs: 1 }, classes: "more", position: forces ? undefined : { x: 0, y: bottom } });
  }
  window.cy = cytoscape({ container: box, elements, style: GRAPH_STYLE, wheelSensitivity: 0.3,
    layout: forces ? { name: "cose", animate: false, randomize: g.nodes.length > 30, nodeRepulsion: () => 8000 }
      : { name: "preset", fit: true, padding: 20 } });
  if (window.cy.zoom() > MAX_FIT_ZOOM) {
    window.cy.zoom(MAX_FIT_ZOOM);
    window.cy.center();
  }
  window.cy.on("tap", "node", (ev) => {
    const done = ev.target.hasClass("more") ? drawNext(query, ev.target) : showNode(panel, ev.target.id());
    done.catch((err) => panel.replaceChildren(h("p", { class: "error" }, err.message)));
  });
  const focus = params.get("node");
  if (focus && window.cy.getElementById(focus).length) {
    window.cy.getElementById(focus).select();
    await showNode(panel, focus);
  }
}

// One click on a "+N" node: the next page of what it stands for, drawn to its right; it counts down, then goes.
async function drawNext(query, more) {
  const d = more.data();
  const q = new URLSearchParams(query);
  if (d.of) q.set("node", d.of); else q.set("starts", "1");
  q.set("offset", d.offset);
  q.set("limit", NEXT_PAGE);
  const v = await api(`/api/graph/next?${q}`);
  const cy = window.cy;
  const p = more.position();
  const fresh = v.nodes.filter((n) => !cy.getElementById(n.node).length);
  const added = [];
  fresh.forEach((n, i) => {
    const at = { x: p.x + 150, y: p.y + (i - (fresh.length - 1) / 2) * 32 };
    added.push({ group: "nodes", data: nodeData(n), classes: nodeClasses(n), position: at });
    if (n.more && !cy.getElementById(`more>${n.node}`).length) {
      added.push({ group: "nodes", ...moreNode(n, 0), position: { x: at.x + 55, y: at.y + 16 } },
        ...(linkMore ? [{ group: "edges", ...moreEdge(n) }] : []));
    }
  });
  cy.add(added);
  cy.add(v.edges.filter((e) => cy.getElementById(e.source).length && cy.getElementById(e.target).length
    && !cy.getElementById(`${e.source}>${e.target}`).length).map((e) => ({ group: "edges", ...edgeData(e) })));
  const offset = v.offset + v.nodes.length;
  if (offset < v.total) more.data({ offset, label: `+${v.total - offset}${d.of ? "" : " starts"}` });
  else cy.remove(more);
  document.body.dataset.drawn = String(cy.nodes().not(".more").length);
}

async function showNode(panel, digest) {
  const v = await api(`/api/nodes/${enc(digest)}?limit=${PAGE}`);
  panel.replaceChildren(h("h2", {}, short(v.hash)), h("ol", { id: "node-text" }, v.principles.map((p) => h("li", {}, p))),
    h("h2", {}, `Runs through it (${v.runs.total})`),
    h("ul", {}, v.runs.rows.map((r) => h("li", {}, link(`#/run/${enc(r.run_id)}?offset=${r.step}`, r.run_id),
      ` from step ${r.step} · ${r.protocol} · ${r.model}`))));
}

// -- the router -------------------------------------------------------------------------------------------

const ROUTES = [
  [/^#\/(experiments)?$/, "experiments", (m, p) => experimentsPage(m)],
  [/^#\/experiment\/(.+)$/, "experiment", (m, p, id) => experimentPage(m, id, p)],
  [/^#\/live\/(.+)$/, "live", (m, p, id) => livePage(m, id)],
  [/^#\/runs$/, "runs", (m, p) => runsPage(m, p)],
  [/^#\/run\/(.+)$/, "run", (m, p, id) => runPage(m, id, p)],
  [/^#\/step\/([^/]+)\/(\d+)$/, "step", (m, p, run, step) => stepPage(m, run, step)],
  [/^#\/call\/(.+)$/, "call", (m, p, id) => callPage(m, id)],
  [/^#\/graph$/, "graph", (m, p) => graphPage(m, p)],
  [/^#\/search$/, "search", (m, p) => searchPage(m, p)],
];

async function route() {
  if (poller) clearInterval(poller);
  poller = null;
  delete document.body.dataset.ready;
  const [path, qs] = (location.hash || "#/experiments").split("?");
  const params = new URLSearchParams(qs || "");
  const main = document.getElementById("main");
  main.replaceChildren();
  let name = "missing";
  try {
    const found = ROUTES.find(([re]) => re.test(path));
    if (!found) throw new Error(`no page ${path}`);
    name = found[1];
    document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active",
      a.id === `nav-${name === "experiment" || name === "live" ? "experiments" : name === "run" ? "runs" : name}`));
    await found[2](main, params, ...path.match(found[0]).slice(1).filter((x) => x !== undefined)
      .map(decodeURIComponent));
  } catch (err) {
    add(main, h("p", { class: "error" }, err.message));
    name = "error";
  }
  document.body.dataset.ready = name;
  api("/api/status").then((s) => {
    document.getElementById("source").textContent = s.writing
      ? `reading a running store's snapshot (${s.age_s} s old)` : `read ${s.age_s} s ago`;
  }).catch(() => {});
}

window.addEventListener("hashchange", route);
route();
