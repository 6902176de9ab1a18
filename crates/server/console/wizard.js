// The create-project wizard: six steps that build the fields of a project file, checked at
// every step by the service itself (POST /api/v1/projects?dry_run=true checks them as a create
// does, then against the source), so an error shows at the field it is about, in the words a
// `sluice run -f` would use. Nothing is stored until the last step.
//
// Keyboard: each step is a form, so Enter goes on; Back is the button before Next; focus moves
// to the step's heading when a step opens.

import { api, el, drawer } from "./ui.js";

const STEPS = ["Source and destination", "Stages", "Objects", "Destination options", "Precheck", "Review and start"];
const FORMATS = ["oms", "oms-extended", "canal", "debezium", "debezium-flat", "maxwell"];
const MQ = ["kafka", "rocketmq", "datahub"];

/** The options step's fields per destination kind: [field, label, kind, choices or hint]. */
const OPTIONS = {
  kafka: [["format", "Message format", "select", FORMATS], ["topic", "Topic template", "text", "{db}.{table}"],
    ["partition_mode", "Partition mode", "select", ["hash", "table", "one"]], ["partitions", "Partitions of a new topic", "number", "1"],
    ["compression", "Compression", "select", ["lz4", "zstd", "gzip", "snappy", "none"]]],
  rocketmq: [["format", "Message format", "select", FORMATS], ["topic", "Topic template", "text", "{db}_{table}"],
    ["partition_mode", "Queue selection", "select", ["hash", "table", "one"]], ["tag", "Tag template", "text", ""],
    ["create_topics", "Create missing topics", "checkbox"]],
  datahub: [["record_type", "Record type", "select", ["TUPLE", "BLOB"]], ["format", "Message format (BLOB only)", "select", ["", ...FORMATS]],
    ["topic", "Topic template", "text", "{db}_{table}"], ["shard_count", "Shards of a new topic", "number", "1"],
    ["create_topics", "Create missing topics", "checkbox", true]],
  database: [["writers", "Parallel writers", "number", "4"], ["unsupported_ddl", "Unsupported DDL", "select", ["", "stop", "skip"]]],
};
const PIPELINE = [["heartbeat_secs", "Heartbeat (s)", "number", "5"], ["batch_rows", "Rows per batch", "number", "2000"],
  ["full_readers", "Full-sync readers", "number", "4"], ["throttle_rows", "At most rows/s (empty: no limit)", "number", ""]];

/** A name part as the project file writes it: plain, or in backquotes when it needs them. */
const part = (s) => (/^[A-Za-z0-9_$-]+$/.test(s) ? s : "`" + s.replaceAll("`", "``") + "`");
const key = (t) => `${part(t.db)}.${part(t.table)}`;
/** How a message of the service writes a table (checks name it `db`.`table`). */
const quoted = (t) => "`" + t.db + "`.`" + t.table + "`";
const lines = (s) => s.split("\n").map((l) => l.trim()).filter(Boolean);

/** The step an error's field belongs to. */
function stepOf(field) {
  if (!field || field === "name" || field.startsWith("source") || field === "destination.datasource") return 0;
  if (field.startsWith("stages") || field === "options.dml" || field === "options.ddl") return 1;
  if (field.startsWith("objects") || field === "destination.topics") return 2;
  return 3;
}

/** The project file's fields as YAML (strings JSON-quoted, which YAML reads as they are). */
function yaml(v, indent = "") {
  if (Array.isArray(v)) return v.length ? v.map((x) => `\n${indent}- ${yaml(x, indent + "  ").trimStart()}`).join("") : " []";
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (!keys.length) return " {}";
    return keys.map((k) => `\n${indent}${/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : JSON.stringify(k)}:${yaml(v[k], indent + "  ")}`).join("");
  }
  return " " + JSON.stringify(v);
}

export async function wizardPage() {
  const draw = drawer();
  const [sources, kinds] = await Promise.all([api("GET", "/api/v1/datasources"), api("GET", "/api/v1/kinds")]);
  const isDb = (kind) => kinds.some((k) => k.kind === kind && k.source);
  const dsKind = (name) => sources.find((d) => d.name === name)?.kind;
  const w = {
    step: 0, name: "", source: sources.find((d) => isDb(d.kind))?.name || "",
    destination: sources.find((d) => !isDb(d.kind))?.name || sources[0]?.name || "",
    schema: true, full: true, incremental: true, verify: false, dml: { insert: true, update: true, delete: true }, ddl: true,
    start: "now", startAt: "", tree: null, treeOf: "", checked: new Set(), include: "", exclude: "",
    dbRename: {}, settings: {}, options: {}, selected: [], precheck: null, force: false,
  };
  const destKind = () => { const k = dsKind(w.destination); return MQ.includes(k) ? k : "database"; };
  /** The destination kind's choices not made yet: the first of each list, a box's default. */
  const defaults = () => {
    for (const [f, , type, choices] of OPTIONS[destKind()]) {
      if (w.options[f] !== undefined) continue;
      if (type === "select") w.options[f] = choices[0];
      if (type === "checkbox") w.options[f] = choices === true;
    }
  };
  const setting = (k) => (w.settings[k] ||= { rename: "", topic: "", filter: "", columns: "" });

  /** The project file's fields from what the steps hold (`upTo`: steps not reached yet are left at their defaults). */
  function spec(upTo) {
    const s = { name: w.name, source: { datasource: w.source }, destination: { datasource: w.destination } };
    s.stages = { schema: w.schema, full: w.full, incremental: w.incremental };
    if (w.verify) s.stages.verify = true;
    if (!w.full && w.start !== "now") s.stages.start = w.start === "position" ? w.startAt : w.start === "time" ? `time:${w.startAt}` : w.start;
    s.options = { dml: Object.keys(w.dml).filter((k) => w.dml[k]), ddl: w.ddl };
    const include = [], exclude = lines(w.exclude);
    if (w.tree) {
      for (const d of w.tree) {
        const all = d.tables.length && d.tables.every((t) => w.checked.has(key({ db: d.db, table: t })));
        if (all) include.push(`${part(d.db)}.*`);
        else for (const t of d.tables) if (w.checked.has(key({ db: d.db, table: t }))) include.push(key({ db: d.db, table: t }));
      }
    }
    include.push(...lines(w.include));
    s.objects = { include: upTo < 2 && !include.length ? ["*.*"] : include, exclude };
    const rename = {}, filters = {}, columns = {}, topics = {};
    for (const t of w.selected) {
      const k = key(t.table), st = w.settings[k] || {};
      if (st.rename) rename[k] = st.rename;
      else if (w.dbRename[t.table.db]) rename[k] = `${part(w.dbRename[t.table.db])}.${part(t.table.table)}`;
      if (st.filter) filters[k] = st.filter;
      if (st.columns) columns[k] = st.columns.split(",").map((c) => c.trim()).filter(Boolean);
      if (st.topic && destKind() !== "database") topics[k] = st.topic;
    }
    for (const [f, v] of [["rename", rename], ["filters", filters], ["columns", columns]]) if (Object.keys(v).length) s.objects[f] = v;
    if (Object.keys(topics).length) s.destination.topics = topics;
    // The destination's own choices always go (a format is required before the options step).
    defaults();
    {
      for (const [f, , type] of OPTIONS[destKind()]) {
        const v = w.options[f];
        if (v === undefined || v === "") continue;
        s.destination[f] = type === "number" ? Number(v) : v;
      }
      if (upTo >= 3) for (const [f] of PIPELINE) if (w.options[`options.${f}`]) s.options[f] = Number(w.options[`options.${f}`]);
    }
    return s;
  }

  /** Asks the service to check the spec; puts its error at its field when that is on this step or before. */
  async function check(precheck) {
    const q = precheck ? "?dry_run=true&precheck=true" : "?dry_run=true";
    try {
      const r = await api("POST", `/api/v1/projects${q}`, spec(w.step));
      w.selected = r.tables;
      return r;
    } catch (e) {
      if (e.status === 400 && stepOf(e.field) > w.step) return null;
      throw e;
    }
  }

  // The page: the step strip, then the current step's form.
  const strip = el("ol", { class: "steps", "aria-label": "Steps" });
  const body = el("div", { id: "wizard-step" });
  const drawStrip = () => strip.replaceChildren(...STEPS.map((s, i) =>
    el("li", { class: i === w.step ? "current" : i < w.step ? "done" : "", "aria-current": i === w.step ? "step" : null }, `${i + 1}. ${s}`)));

  /** Shows an error at its field's input (by id or by the table it names), else at the step. */
  function at(e) {
    let target = null;
    const f = e.field || "";
    const byId = { name: "wiz-name", "source.datasource": "wiz-source", "destination.datasource": "wiz-destination", "stages.start": "wiz-start",
      "objects.include": "wiz-include", "objects.exclude": "wiz-exclude" };
    if (byId[f]) target = document.getElementById(`${byId[f]}-error`);
    const setting = { "objects.rename": "rename", "objects.filters": "filter", "objects.columns": "columns", "destination.topics": "topic" }[f];
    if (setting) {
      for (const t of w.selected) {
        if (e.message.startsWith(`${key(t.table)}:`) || e.message.includes(quoted(t.table))) {
          target = document.querySelector(`[data-error="${setting}"][data-key="${CSS.escape(key(t.table))}"]`);
          break;
        }
      }
    }
    if (!target && (f.startsWith("destination.") || f.startsWith("options."))) target = document.getElementById(`wiz-opt-${f.replace(/^destination\./, "")}-error`);
    (target || document.getElementById("wiz-error")).textContent = e.message;
  }

  function step(title, fields, { next = "Next", onNext, back = true }) {
    const error = el("p", { class: "error", id: "wiz-error", role: "alert" });
    const heading = el("h2", { tabindex: -1, id: "wiz-heading" }, `${w.step + 1}. ${title}`);
    const form = el("form", { class: "panel wide", "aria-labelledby": "wiz-heading", novalidate: true }, heading, fields,
      el("div", { class: "toolbar" },
        back ? el("button", { type: "button", id: "wiz-back", onclick: () => go(w.step - 1) }, "Back") : null,
        next ? el("button", { class: "primary", type: "submit", id: "wiz-next" }, next) : null),
      error);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      for (const e of form.querySelectorAll(".error")) e.textContent = "";
      const button = form.querySelector("#wiz-next");
      if (button) button.disabled = true;
      try { await onNext(); } catch (e) { at(e); }
      finally { if (button) button.disabled = false; }
    });
    body.replaceChildren(form);
    heading.focus();
  }

  const field = (id, label, input, hint) => [el("label", { for: id }, label), input, hint ? el("p", { class: "muted hint" }, hint) : null,
    el("p", { class: "error field-error", id: `${id}-error` })];
  const bind = (input, get, set) => { input.value = get(); input.addEventListener("input", () => set(input.value)); return input; };
  const box = (id, label, get, set, attrs = {}) => {
    const c = el("input", { type: "checkbox", id, ...attrs });
    c.checked = get();
    c.addEventListener("change", () => set(c.checked));
    return el("div", { class: "check" }, c, el("label", { for: id }, label));
  };

  function go(n) {
    w.step = Math.max(0, Math.min(STEPS.length - 1, n));
    drawStrip();
    [stepNames, stepStages, stepObjects, stepOptions, stepPrecheck, stepReview][w.step]();
  }

  function stepNames() {
    const pick = (id, dbs) => el("select", { id, required: true },
      sources.filter((d) => isDb(d.kind) === dbs || (!dbs && isDb(d.kind))).map((d) => el("option", { value: d.name }, `${d.name} (${d.kind})`)));
    const name = bind(el("input", { id: "wiz-name", required: true, autocomplete: "off" }), () => w.name, (v) => (w.name = v));
    const src = pick("wiz-source", true), dst = pick("wiz-destination", false);
    src.value = w.source; dst.value = w.destination;
    src.addEventListener("change", () => { w.source = src.value; w.tree = null; w.checked.clear(); });
    dst.addEventListener("change", () => { w.destination = dst.value; w.options = {}; });
    step(STEPS[0], [
      ...field("wiz-name", "Project name *", name, "letters, digits, - and _"),
      ...field("wiz-source", "Source data source *", src),
      ...field("wiz-destination", "Destination data source *", dst, sources.length ? null : "Add data sources first (Data sources page)."),
    ], { back: false, onNext: async () => { w.source = src.value; w.destination = dst.value; await check(); go(1); } });
  }

  function stepStages() {
    const start = el("select", { id: "wiz-start", disabled: w.full },
      [["now", "now"], ["earliest", "the oldest log kept"], ["position", "a position (FILE:OFFSET or gtid:D-S-N)"], ["time", "a time (RFC 3339)"]]
        .map(([v, l]) => el("option", { value: v }, l)));
    start.value = w.start;
    const startAt = bind(el("input", { id: "wiz-start-at", disabled: w.full || w.start === "now" || w.start === "earliest" }), () => w.startAt, (v) => (w.startAt = v));
    start.addEventListener("change", () => { w.start = start.value; startAt.disabled = w.full || ["now", "earliest"].includes(w.start); });
    const fullBox = box("wiz-full", "Full sync: copy the existing rows first", () => w.full, (v) => {
      w.full = v; start.disabled = v; startAt.disabled = v || ["now", "earliest"].includes(w.start);
    });
    step(STEPS[1], [
      el("fieldset", {}, el("legend", {}, "Stages"),
        box("wiz-schema", "Schema: create topics or tables before data", () => w.schema, (v) => (w.schema = v)),
        fullBox,
        box("wiz-incremental", "Incremental sync: capture and deliver changes", () => w.incremental, (v) => (w.incremental = v)),
        box("wiz-verify", "Verification: compare the destination with the source once caught up", () => w.verify, (v) => (w.verify = v))),
      el("fieldset", {}, el("legend", {}, "Incremental: what to deliver"),
        ["insert", "update", "delete"].map((o) => box(`wiz-dml-${o}`, `${o[0].toUpperCase()}${o.slice(1)}`, () => w.dml[o], (v) => (w.dml[o] = v))),
        box("wiz-ddl", "DDL of the selected tables", () => w.ddl, (v) => (w.ddl = v))),
      ...field("wiz-start", "Incremental start (without full sync)", start, "with full sync, incremental starts where the copy began"),
      ...field("wiz-start-at", "Position or time", startAt),
    ], { onNext: async () => { await check(); go(2); } });
  }

  async function stepObjects() {
    const tree = el("div", { id: "wiz-tree", class: "tree" }, el("p", { class: "muted" }, "Reading the source's tables…"));
    const chosen = el("tbody", { id: "wiz-selected" });
    const include = bind(el("textarea", { id: "wiz-include", rows: 2 }), () => w.include, (v) => { w.include = v; later(); });
    const exclude = bind(el("textarea", { id: "wiz-exclude", rows: 2 }), () => w.exclude, (v) => { w.exclude = v; later(); });
    const note = el("p", { class: "muted", id: "wiz-selection-note", role: "status" });
    let timer = null;
    const later = () => { clearTimeout(timer); timer = setTimeout(preview, 400); };
    const mq = destKind() !== "database";
    /** Redraws the selected tables with their settings (kept across redraws by table). */
    const drawChosen = () => {
      const input = (k, what, label, hint) => {
        const i = el("input", { "aria-label": `${label} of ${k}`, "data-key": k, "data-setting": what, placeholder: hint });
        i.value = setting(k)[what];
        i.addEventListener("input", () => (setting(k)[what] = i.value));
        return el("td", {}, i, el("p", { class: "error field-error", "data-error": what, "data-key": k }));
      };
      chosen.replaceChildren(...w.selected.map((t) => {
        const k = key(t.table);
        return el("tr", { "data-table": k },
          el("td", {}, k), el("td", {}, key(t.to)),
          input(k, "rename", "Rename", "db.table"),
          mq ? input(k, "topic", "Topic", "topic name") : null,
          input(k, "filter", "Row filter", "SQL condition"),
          input(k, "columns", "Columns", "all; or id, name, ..."));
      }));
      note.textContent = `${w.selected.length} table(s) selected.`;
    };
    async function preview() {
      for (const e of document.querySelectorAll("#wizard-step .error")) e.textContent = "";
      try { await check(); } catch (e) { at(e); return; }
      drawChosen();
    }
    step(STEPS[2], [
      el("h3", {}, "Databases and tables of ", w.source), tree,
      ...field("wiz-include", "Include rules (one per line; * matches any run of characters)", include, "e.g. shop.order_*"),
      ...field("wiz-exclude", "Exclude rules (exclude wins)", exclude),
      el("h3", {}, "Selected tables"), note,
      el("table", { class: "settings" }, el("thead", {}, el("tr", {},
        ["Table", "At the destination", "Rename to", ...(mq ? ["Topic"] : []), "Row filter", "Columns"].map((h) => el("th", { scope: "col" }, h)))), chosen),
    ], { onNext: async () => { clearTimeout(timer); await check(); drawChosen(); go(3); } });
    if (!w.tree || w.treeOf !== w.source) {
      try {
        w.tree = await api("GET", `/api/v1/datasources/${encodeURIComponent(w.source)}/tables`);
        w.treeOf = w.source;
      } catch (e) {
        tree.replaceChildren(el("p", { class: "error" }, e.message));
        return;
      }
    }
    tree.replaceChildren(...w.tree.map((d, di) => {
      const tables = d.tables.map((t, ti) => {
        const k = key({ db: d.db, table: t }), id = `wiz-t-${di}-${ti}`;
        const c = el("input", { type: "checkbox", id, "data-key": k });
        c.checked = w.checked.has(k);
        c.addEventListener("change", () => { c.checked ? w.checked.add(k) : w.checked.delete(k); sync(); later(); });
        return el("li", {}, c, el("label", { for: id }, t));
      });
      const all = el("input", { type: "checkbox", id: `wiz-db-${di}`, "data-db": d.db });
      const sync = () => {
        const n = d.tables.filter((t) => w.checked.has(key({ db: d.db, table: t }))).length;
        all.checked = n > 0 && n === d.tables.length;
        all.indeterminate = n > 0 && n < d.tables.length;
      };
      all.addEventListener("change", () => {
        for (const t of d.tables) all.checked ? w.checked.add(key({ db: d.db, table: t })) : w.checked.delete(key({ db: d.db, table: t }));
        for (const c of tables) c.querySelector("input").checked = all.checked;
        sync(); later();
      });
      sync();
      const rename = bind(el("input", { id: `wiz-dbrename-${di}`, "data-db": d.db, class: "inline", placeholder: "same name", "aria-label": `Rename database ${d.db} to` }),
        () => w.dbRename[d.db] || "", (v) => { w.dbRename[d.db] = v; later(); });
      return el("div", { class: "tree-db" },
        el("div", { class: "check" }, all, el("label", { for: `wiz-db-${di}` }, d.db), el("span", { class: "muted" }, " rename to "), rename),
        el("ul", {}, tables));
    }));
    if (w.selected.length) drawChosen();
  }

  function stepOptions() {
    const input = ([f, label, type, choices]) => {
      const id = `wiz-opt-${f}`;
      const k = f;
      if (type === "checkbox") {
        return [box(id, label, () => w.options[k], (v) => (w.options[k] = v)), el("p", { class: "error field-error", id: `${id}-error` })];
      }
      const i = type === "select"
        ? el("select", { id }, choices.map((c) => el("option", { value: c }, c || "(default)")))
        : el("input", { id, type: type === "number" ? "number" : "text", placeholder: choices || "" });
      return field(id, label, bind(i, () => w.options[k] ?? (type === "select" ? choices[0] : ""), (v) => (w.options[k] = v)));
    };
    defaults();
    step(STEPS[3], [
      el("fieldset", {}, el("legend", {}, `Destination (${dsKind(w.destination) || "?"})`), OPTIONS[destKind()].flatMap(input)),
      el("fieldset", {}, el("legend", {}, "Pipeline"), PIPELINE.flatMap(([f, ...rest]) => input([`options.${f}`, ...rest]))),
    ], { onNext: async () => { await check(); go(4); } });
  }

  function stepPrecheck() {
    const out = el("div", { id: "wiz-precheck", role: "status" }, el("p", { class: "muted" }, "Running the precheck…"));
    step(STEPS[4], [out, box("wiz-force", "Start even though the precheck failed", () => w.force, (v) => (w.force = v))],
      { onNext: async () => go(5) });
    (async () => {
      try {
        const r = await check(true);
        w.precheck = r && r.precheck;
      } catch (e) {
        out.replaceChildren(el("p", { class: "error" }, e.message));
        return;
      }
      const f = w.precheck;
      const list = (items, cls) => el("ul", { class: cls }, items.map((x) => el("li", {}, el("strong", {}, x.item), `: ${x.problem}`, el("br"), el("span", { class: "muted" }, `Fix: ${x.fix}`))));
      out.replaceChildren(
        el("p", { class: f.passed ? "ok" : "error", id: "wiz-precheck-result" }, f.passed ? "The precheck passed." : `The precheck failed (${f.failures.length}).`),
        el("p", { class: "muted" }, `Checked: ${f.checked.join(", ")}.`),
        f.failures.length ? [el("h3", {}, "Failures"), list(f.failures, "failures")] : null,
        f.warnings.length ? [el("h3", {}, "Warnings"), list(f.warnings, "warnings")] : null);
    })();
  }

  function stepReview() {
    const s = spec(5);
    const text = `# Project ${w.name}, from the Sluice console.${yaml(s)}\n`;
    const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "application/yaml" })), download: `${w.name}.yaml`, id: "wiz-yaml-download" }, "Download YAML");
    const make = async (start) => {
      const r = await api("POST", "/api/v1/projects", s);
      if (start) {
        try { await api("POST", `/api/v1/projects/${encodeURIComponent(r.name)}/start`, { force: w.force }); }
        catch (e) { location.hash = `#/projects/${encodeURIComponent(r.name)}`; throw e; }
      }
      location.hash = `#/projects/${encodeURIComponent(r.name)}`;
    };
    step(STEPS[5], [
      el("dl", { class: "facts" },
        el("dt", {}, "Project"), el("dd", {}, w.name),
        el("dt", {}, "From → to"), el("dd", {}, `${w.source} → ${w.destination}`),
        el("dt", {}, "Stages"), el("dd", {}, ["schema", "full", "incremental", "verify"].filter((k) => w[k]).join(", ")),
        el("dt", {}, "Tables"), el("dd", { id: "wiz-review-tables" }, w.selected.map((t) => `${key(t.table)} → ${key(t.to)}`).join(", ") || "—"),
        el("dt", {}, "Precheck"), el("dd", {}, w.precheck ? (w.precheck.passed ? "passed" : "failed") : "—")),
      el("h3", {}, "Project file"), el("pre", { id: "wiz-yaml" }, text),
      el("div", { class: "toolbar" }, link,
        el("button", { type: "button", id: "wiz-create", onclick: () => make(false).catch(at) }, "Create only")),
    ], { next: "Create and start", onNext: () => make(true) });
  }

  draw(el("h1", {}, "Create a project"), strip, body);
  go(0);
}
