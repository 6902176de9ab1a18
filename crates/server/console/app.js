// The Sluice console: pages rendered in the browser from the service's own JSON API (the same
// calls a script makes), no build step, no framework. The session is the `sluice_session`
// cookie the login sets (HttpOnly, SameSite=Strict).

import { api, el, show, drawer, navigated, STATES, fmtTime, fmtLatency, fmtRate, fmtBytes } from "./ui.js";
import { wizardPage } from "./wizard.js";

function signedIn(me) {
  document.getElementById("nav").hidden = !me;
  document.getElementById("user").hidden = !me;
  document.getElementById("who").textContent = me ? `${me.user} (${me.role})` : "";
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", location.hash.startsWith(a.getAttribute("href")));
  }
}

function loginPage(message) {
  signedIn(null);
  const error = el("p", { class: "error", role: "alert", id: "login-error" }, message || "");
  const form = el("form", { class: "card", "aria-labelledby": "login-title" },
    el("h1", { id: "login-title" }, "Sign in to Sluice"),
    el("label", { for: "login-user" }, "User"),
    el("input", { id: "login-user", name: "user", autocomplete: "username", required: true, value: "admin" }),
    el("label", { for: "login-password" }, "Password"),
    el("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    el("button", { class: "primary", type: "submit" }, "Sign in"),
    error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      await api("POST", "/api/v1/login", { user: form.user.value, password: form.password.value });
      // A new hash draws the page through its hashchange; drawing it here too would draw it
      // twice, the second replacing what the user already did on the first.
      if (!location.hash || location.hash === "#/login") location.hash = "#/projects";
      else route();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  show(form);
  form.password.focus();
}


/** The lifecycle actions offered on the list (the project page has them all). */
const LIST_ACTIONS = ["start", "pause", "resume", "stop", "release"];
const label = (a) => a[0].toUpperCase() + a.slice(1);

async function projectsPage() {
  const draw = drawer();
  const all = await api("GET", "/api/v1/projects");
  const filter = el("select", { id: "state-filter" },
    el("option", { value: "" }, "every state"),
    STATES.map((s) => el("option", { value: s }, s)));
  const body = el("tbody");
  const fill = () => {
    const rows = all.filter((p) => !filter.value || p.state === filter.value);
    body.replaceChildren(...rows.map((p) => el("tr", { "data-project": p.name },
      el("td", {}, el("a", { href: `#/projects/${encodeURIComponent(p.name)}` }, p.name)),
      el("td", {}, `${p.source ?? "—"} → ${p.destination ?? "—"}`),
      el("td", {}, p.stage || "—"),
      el("td", {}, el("span", { class: `state state-${p.state}` }, p.state)),
      el("td", {}, fmtTime(p.checkpoint && p.checkpoint.ts_ms)),
      el("td", {}, fmtLatency(p.latency_ms)),
      el("td", {}, fmtRate(p.writer)),
      el("td", { class: "row-actions" }, (p.actions || []).filter((a) => LIST_ACTIONS.includes(a.action)).map((a) =>
        el("button", { type: "button", "data-action": a.action, disabled: !a.allowed, title: a.allowed ? null : a.reason,
          onclick: () => listAct(p.name, a.action) }, label(a.action)))))));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No project in this state.")));
  };
  const notice = el("div", { id: "list-result", role: "alert" });
  const listAct = async (name, action) => {
    notice.replaceChildren();
    try {
      await api("POST", `/api/v1/projects/${encodeURIComponent(name)}/${action}`, {});
      const kept = filter.value;
      await projectsPage();
      const f = document.getElementById("state-filter");
      f.value = kept;
      f.dispatchEvent(new Event("change"));
    } catch (e) { notice.replaceChildren(el("p", { class: "error" }, `${name}: ${e.message}`)); }
  };
  filter.addEventListener("change", fill);
  fill();
  draw(el("h1", {}, "Projects"),
    el("div", { class: "toolbar" }, el("label", { for: "state-filter" }, "State"), filter,
      el("a", { class: "button primary", href: "#/new", id: "new-project" }, "Create project")),
    notice,
    el("table", { id: "projects" },
      el("thead", {}, el("tr", {}, ["Name", "Source → destination", "Stage", "State", "Checkpoint", "Latency", "Rows/s", "Actions"].map((h) => el("th", { scope: "col" }, h)))),
      body));
}


/** A line chart (SVG) of some series over time: [{name, points: [[ms, value]...]}]. */
function chart(title, series) {
  const W = 520, H = 160, P = 30;
  const all = series.flatMap((s) => s.points);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  svg.classList.add("chart");
  if (all.length) {
    const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
    const vmax = Math.max(1, ...all.map((p) => p[1]));
    const x = (t) => P + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * P);
    const y = (v) => H - P - (v / vmax) * (H - 2 * P);
    series.forEach((s, i) => {
      const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("points", s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "));
      line.setAttribute("class", `series series-${i}`);
      line.setAttribute("data-points", String(s.points.length));
      svg.append(line);
    });
    const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
    label.setAttribute("x", "4"); label.setAttribute("y", "14");
    label.textContent = `max ${vmax.toFixed(0)}`;
    svg.append(label);
  }
  return el("figure", { class: "chart-box" }, el("figcaption", {}, title, " ",
    series.map((s, i) => el("span", { class: `key key-${i}` }, s.name))), svg);
}

let refresh = null;

async function projectPage(name) {
  const draw = drawer();
  const p = await api("GET", `/api/v1/projects/${encodeURIComponent(name)}`);
  const since = Date.now() - 15 * 60 * 1000;
  const samples = await api("GET", `/api/v1/projects/${encodeURIComponent(name)}/figures?since_ms=${since}`);
  const notice = el("div", { id: "action-result", role: "alert" });
  const act = async (a) => {
    notice.replaceChildren();
    try {
      if (a) await api("POST", `/api/v1/projects/${encodeURIComponent(name)}/${a}`, {});
      await projectPage(name);
    } catch (e) {
      notice.append(el("p", { class: "error" }, e.message));
    }
  };
  const buttons = p.actions.filter((a) => a.action !== "delete" && a.action !== "modify").map((a) =>
    el("button", { type: "button", "data-action": a.action, disabled: !a.allowed, title: a.allowed ? null : a.reason,
      onclick: () => act(a.action) }, a.action[0].toUpperCase() + a.action.slice(1)));
  const stages = ["schema", "full", "incremental"].map((s) =>
    el("li", { class: s === p.stage ? "current" : "" }, s));
  const verifies = Boolean(p.spec && p.spec.stages && p.spec.stages.verify);
  const verified = (p.verification || []).length > 0;
  stages.push(el("li", verifies || verified ? { class: p.verifying ? "current" : "" } : { class: "absent", title: "this project has no verification stage (stages.verify); the Verify button runs one" }, "verification"));
  const comp = (label, c) => el("section", { class: "component", "aria-label": label }, el("h2", {}, label),
    el("dl", {},
      el("dt", {}, "Position"), el("dd", {}, (c && c.position) || "—"),
      el("dt", {}, "Rows/s"), el("dd", { "data-figure": "rows_per_s" }, fmtRate(c)),
      el("dt", {}, "Bytes/s"), el("dd", {}, fmtBytes(c && c.bytes_per_s)),
      el("dt", {}, "Delay"), el("dd", {}, fmtLatency(c && c.delay_ms))));
  const pts = (k, f) => samples.filter((s) => s[k]).map((s) => [s.at_ms, f(s[k])]);
  draw(
    el("h1", {}, p.name, " ", el("span", { class: `state state-${p.state}`, id: "project-state" }, p.state)),
    el("div", { class: "toolbar", role: "group", "aria-label": "Actions" }, buttons,
      el("a", { href: `/api/v1/projects/${encodeURIComponent(name)}/yaml`, download: `${name}.yaml`, id: "download-yaml" }, "Download YAML")),
    notice,
    el("dl", { class: "facts" },
      el("dt", {}, "Stage"), el("dd", { id: "project-stage" }, p.stage || "—"),
      el("dt", {}, "Checkpoint"), el("dd", {}, p.checkpoint ? `${p.checkpoint.position} (${fmtTime(p.checkpoint.ts_ms)})` : "—"),
      el("dt", {}, "Latency"), el("dd", {}, fmtLatency(p.latency_ms)),
      el("dt", {}, "Message"), el("dd", {}, p.message || "—"),
      ...(p.on_source ? [el("dt", {}, "On source"), el("dd", { id: "on-source" }, p.on_source)] : [])),
    el("ol", { class: "stages", "aria-label": "Stages" }, stages),
    el("h2", {}, "Full sync"),
    el("table", { id: "full" }, el("thead", {}, el("tr", {}, ["Table", "Rows", "Estimated", "Progress"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, p.full.tables.map((t) => el("tr", { "data-table": t.table },
        el("td", {}, t.table), el("td", {}, t.rows), el("td", {}, t.total),
        el("td", {}, el("progress", { max: 100, value: t.done ? 100 : Math.min(99, Math.floor((100 * t.rows) / Math.max(1, t.total))) }),
          " ", t.done ? "done" : ""))))),
    el("div", { class: "components" }, comp("Store (reader)", p.store), comp("Writer", p.writer)),
    el("div", { class: "components" },
      chart("Rows/s", [{ name: "Store", points: pts("store", (c) => c.rows_per_s) }, { name: "Writer", points: pts("writer", (c) => c.rows_per_s) }]),
      chart("Bytes/s", [{ name: "Store", points: pts("store", (c) => c.bytes_per_s) }, { name: "Writer", points: pts("writer", (c) => c.bytes_per_s) }])),
    el("div", { class: "components" },
      chart("Delay (ms; the Writer's is the checkpoint latency)", [{ name: "Store", points: pts("store", (c) => c.delay_ms || 0) }, { name: "Writer", points: pts("writer", (c) => c.delay_ms || 0) }]),
      objectsBox(p, act)),
    el("h2", {}, "Verification", p.verifying ? el("span", { class: "muted", id: "verifying" }, " (verifying…)") : ""),
    (p.verification || []).length
      ? el("div", {}, el("table", { id: "verification" }, el("thead", {}, el("tr", {}, ["Table", "At the destination", "Rows", "Equal", "Missing", "Extra", "Different", "When"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, p.verification.map((v) => el("tr", { "data-verified": v.table, class: v.missing + v.extra + v.different ? "differs" : "" },
          el("td", {}, v.table), el("td", {}, v.dest), el("td", {}, v.rows), el("td", {}, v.equal), el("td", {}, v.missing),
          el("td", {}, v.extra), el("td", {}, v.different), el("td", {}, fmtTime(v.at_ms)))))),
        // The first differences of each table that differs.
        p.verification.filter((v) => v.detail && v.detail.examples && v.detail.examples.length).map((v) =>
          el("details", { class: "differences", "data-differences": v.table }, el("summary", {}, `${v.table}: first differences`),
            el("ul", {}, v.detail.examples.map((d) => el("li", {}, `${d.kind} ${d.key.map((k) => `${k.column}=${k.value}`).join(", ")}`,
              d.columns.length ? `: ${d.columns.join(", ")}` : ""))))))
      : el("p", { class: "muted" }, verifies ? "Not yet: it runs once incremental sync has caught up." : "None (sluice verify, or stages.verify)."),
    el("h2", {}, "Last errors"),
    p.errors.length ? el("ul", { id: "errors" }, p.errors.map((e) => el("li", {}, `${fmtTime(e.at_ms)}: ${e.message}`))) : el("p", { class: "muted" }, "None."),
    el("h2", {}, "Modifications"),
    p.modifications.length ? el("ul", {}, p.modifications.map((m) => el("li", {}, `${fmtTime(m.at_ms)} ${m.state}: ${m.message}`))) : el("p", { class: "muted" }, "None."));
}

/** The source tables (for the add-table list), read once per data source while the page shows. */
const sourceTables = new Map();
/** A project's selection by its rules (the API reads it from the source). */
const selections = new Map();

/** A project's object rules with a form to add a table and a button to remove each named one. */
function objectsBox(p, act) {
  const o = (p.spec && p.spec.objects) || {};
  const modify = p.actions.find((a) => a.action === "modify") || { allowed: false };
  const notice = el("p", { class: "error", id: "objects-error", role: "alert" });
  const change = async (body) => {
    notice.textContent = "";
    try {
      await api("POST", `/api/v1/projects/${encodeURIComponent(p.name)}/objects`, body);
      await act(null);
    } catch (e) { notice.textContent = e.message; }
  };
  const exact = (t) => !t.includes("*") && t.includes(".");
  const rows = [];
  for (const t of o.include || []) {
    rows.push(el("tr", { "data-include": t }, el("td", {}, "include"), el("td", {}, t),
      el("td", {}, exact(t) ? el("button", { type: "button", "data-remove": t, disabled: !modify.allowed, title: modify.allowed ? null : modify.reason,
        onclick: () => change({ remove: [t] }) }, "Remove") : "")));
  }
  for (const t of o.exclude || []) rows.push(el("tr", {}, el("td", {}, "exclude"), el("td", {}, t), el("td")));
  for (const [k, label] of [["rename", "rename"], ["filters", "row filter"], ["columns", "columns"]]) {
    for (const [t, v] of Object.entries(o[k] || {})) {
      rows.push(el("tr", {}, el("td", {}, label), el("td", {}, `${t} → ${Array.isArray(v) ? v.join(", ") : v}`), el("td")));
    }
  }
  const input = el("input", { id: "add-table", list: "source-tables", placeholder: "db.table", autocomplete: "off" });
  const list = el("datalist", { id: "source-tables" });
  const ds = p.spec && p.spec.source && p.spec.source.datasource;
  if (ds) {
    if (!sourceTables.has(ds)) sourceTables.set(ds, api("GET", `/api/v1/datasources/${encodeURIComponent(ds)}/tables`).catch(() => []));
    sourceTables.get(ds).then((dbs) => list.replaceChildren(...dbs.flatMap((d) => d.tables.map((t) => el("option", { value: `${d.db}.${t}` })))));
  }
  const form = el("form", { class: "toolbar", "aria-label": "Change the objects" },
    el("label", { for: "add-table" }, "Add a table"), input, list,
    el("button", { type: "submit", id: "add-table-button", disabled: !modify.allowed, title: modify.allowed ? null : modify.reason }, "Add"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); if (input.value.trim()) change({ add: [input.value.trim()] }); });
  // Where each selected table goes, read from the source once per version of the rules.
  const mapping = el("tbody", { id: "mapping" });
  const id = `${p.name}\u0000${JSON.stringify(o)}`;
  if (!selections.has(id)) selections.set(id, api("GET", `/api/v1/projects/${encodeURIComponent(p.name)}/objects`));
  selections.get(id).then((r) => mapping.replaceChildren(...r.tables.map((t) =>
    el("tr", { "data-mapped": `${t.table.db}.${t.table.table}` }, el("td", {}, `${t.table.db}.${t.table.table}`), el("td", {}, "→"),
      el("td", {}, `${t.to.db}.${t.to.table}`)))),
  (e) => { selections.delete(id); mapping.replaceChildren(el("tr", {}, el("td", { class: "muted" }, e.message))); });
  return el("section", { class: "component", "aria-label": "Objects" }, el("h2", {}, "Objects"),
    el("table", { id: "objects" }, el("tbody", {}, rows)), form, notice,
    el("h3", {}, "Selected tables and where they go"), el("table", { class: "mapping" }, mapping));
}

/** Where a data source points, as one line. */
function addressOf(d) {
  if (d.host) return `${d.host}:${d.port ?? 3306}`;
  return d.brokers || d.namesrv || d.endpoint || "—";
}

async function datasourcesPage() {
  const draw = drawer();
  const [all, kinds] = await Promise.all([api("GET", "/api/v1/datasources"), api("GET", "/api/v1/kinds")]);
  const result = el("div", { id: "datasource-result", role: "alert" });
  const say = (text, ok) => result.replaceChildren(el("p", { class: ok ? "ok" : "error" }, text));
  const rowActions = (d) => el("td", {},
    el("button", { type: "button", "data-test": d.name, onclick: async () => {
      say(`Testing ${d.name}…`, true);
      try {
        const r = await api("POST", `/api/v1/datasources/${encodeURIComponent(d.name)}/test`);
        say(`${d.name}: ${r.message}`, r.ok);
      } catch (e) { say(e.message, false); }
    } }, "Test connection"), " ",
    el("button", { type: "button", "data-edit": d.name, onclick: () => edit(d) }, "Edit"), " ",
    el("button", { type: "button", "data-delete": d.name, onclick: async () => {
      try {
        await api("DELETE", `/api/v1/datasources/${encodeURIComponent(d.name)}`);
        await datasourcesPage();
      } catch (e) { say(e.message, false); }
    } }, "Delete"));

  // The add / edit form: the fields of the chosen kind, as the API lists them. Editing keeps
  // the name and kind; a secret left empty stays as it is.
  let editing = null;
  const kind = el("select", { id: "ds-kind", name: "kind" }, kinds.map((k) => el("option", { value: k.kind }, k.kind)));
  const fields = el("div", { id: "ds-fields" });
  const drawFields = () => {
    const k = kinds.find((x) => x.kind === kind.value);
    fields.replaceChildren(...k.fields.filter((f) => f.type !== "properties").flatMap((f) => [
      el("label", { for: `ds-${f.name}` }, f.name.replace("_", " "), f.required ? " *" : ""),
      el("input", { id: `ds-${f.name}`, name: f.name, type: f.secret ? "password" : f.type === "port" ? "number" : "text",
        required: f.required && !(editing && f.secret), autocomplete: f.secret ? "new-password" : "off",
        placeholder: editing && f.secret ? "unchanged" : null,
        value: editing && !f.secret && editing[f.name] !== undefined && editing[f.name] !== null ? String(editing[f.name]) : null }),
      el("p", { class: "error field-error", id: `ds-${f.name}-error` })]));
  };
  kind.addEventListener("change", drawFields);
  drawFields();
  const formError = el("p", { class: "error", id: "ds-error" });
  const title = el("h2", { id: "ds-add-title", tabindex: -1 }, "Add a data source");
  const nameInput = el("input", { id: "ds-name", name: "name", required: true });
  const submit = el("button", { class: "primary", type: "submit", id: "ds-submit" }, "Add");
  const cancel = el("button", { type: "button", id: "ds-cancel", hidden: true, onclick: () => datasourcesPage() }, "Cancel");
  const form = el("form", { class: "panel", "aria-labelledby": "ds-add-title" },
    title,
    el("label", { for: "ds-name" }, "Name *"), nameInput,
    el("p", { class: "error field-error", id: "ds-name-error" }),
    el("label", { for: "ds-kind" }, "Kind"), kind, fields,
    el("div", { class: "toolbar" }, submit, cancel), formError);
  const edit = (d) => {
    editing = d;
    title.textContent = `Edit data source ${d.name}`;
    nameInput.value = d.name; nameInput.disabled = true;
    kind.value = d.kind; kind.disabled = true;
    submit.textContent = "Save"; cancel.hidden = false;
    drawFields();
    title.focus();
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const e of form.querySelectorAll(".error")) e.textContent = "";
    const body = editing ? {} : { kind: kind.value };
    for (const input of form.querySelectorAll("input")) {
      if (input.value === "" || input.disabled) continue;
      body[input.name] = input.type === "number" ? Number(input.value) : input.value;
    }
    try {
      if (editing) await api("PUT", `/api/v1/datasources/${encodeURIComponent(editing.name)}`, body);
      else await api("POST", "/api/v1/datasources", body);
      await datasourcesPage();
    } catch (e) {
      const at = e.field && document.getElementById(`ds-${e.field}-error`);
      (at || formError).textContent = e.message;
    }
  });

  draw(el("h1", {}, "Data sources"), result,
    el("table", { id: "datasources" },
      el("thead", {}, el("tr", {}, ["Name", "Kind", "Address", "User", "In use by", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, all.length ? all.map((d) => el("tr", { "data-datasource": d.name },
        el("td", {}, d.name), el("td", {}, d.kind), el("td", {}, addressOf(d)),
        el("td", {}, d.user || d.access_id || "—"),
        el("td", {}, d.used_by.length ? d.used_by.join(", ") : "—"), rowActions(d)))
        : el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No data source yet.")))),
    form);
}

async function tokensPage() {
  const draw = drawer();
  const all = await api("GET", "/api/v1/tokens");
  const shown = el("div", { id: "new-token", role: "status" });
  const label = el("input", { id: "token-label", name: "label", required: true });
  const days = el("input", { id: "token-days", name: "days", type: "number", min: 1 });
  const error = el("p", { class: "error", id: "token-error" });
  const form = el("form", { class: "panel", "aria-labelledby": "token-title" },
    el("h2", { id: "token-title" }, "Create an API token"),
    el("label", { for: "token-label" }, "Label *"), label,
    el("label", { for: "token-days" }, "Expires after (days, empty: never)"), days,
    el("button", { class: "primary", type: "submit" }, "Create"), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      const body = { label: label.value };
      if (days.value) body.expires_in_s = Number(days.value) * 86400;
      const t = await api("POST", "/api/v1/tokens", body);
      await tokensPage();
      document.getElementById("new-token").replaceChildren(
        el("p", {}, "Copy the token now; it is not shown again:"),
        el("code", { id: "token-value" }, t.token));
    } catch (e) { error.textContent = e.message; }
  });
  draw(el("h1", {}, "API tokens"), shown,
    el("table", { id: "tokens" },
      el("thead", {}, el("tr", {}, ["Label", "Created", "Expires", "State", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, all.length ? all.map((t) => el("tr", { "data-token": t.label },
        el("td", {}, t.label), el("td", {}, fmtTime(t.created_ms)), el("td", {}, t.expires_ms ? fmtTime(t.expires_ms) : "never"),
        el("td", {}, t.revoked ? "revoked" : "active"),
        el("td", {}, t.revoked ? "" : el("button", { type: "button", "data-revoke": t.label, onclick: async () => {
          try { await api("DELETE", `/api/v1/tokens/${encodeURIComponent(t.id)}`); await tokensPage(); }
          catch (e) { error.textContent = e.message; }
        } }, "Revoke"))))
        : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No API token yet.")))),
    form);
}

async function route() {
  navigated();
  const draw = drawer();
  let me;
  try {
    me = await api("GET", "/api/v1/me");
  } catch (e) {
    if (e.status === 401) return loginPage();
    return draw(el("p", { class: "error", role: "alert" }, e.message));
  }
  signedIn(me);
  clearInterval(refresh);
  const detail = location.hash.match(/^#\/projects\/(.+)$/);
  const page = detail
    ? () => projectPage(decodeURIComponent(detail[1]))
    : location.hash.startsWith("#/new") ? wizardPage
    : location.hash.startsWith("#/datasources") ? datasourcesPage
    : location.hash.startsWith("#/tokens") ? tokensPage : projectsPage;
  if (detail) {
    // The detail page follows the project: redrawn every 2 s while it shows.
    // Not while the user is in a field or on a button (a redraw would take it away).
    refresh = setInterval(() => {
      const busy = ["BUTTON", "INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
      if (!busy && !document.getElementById("add-table")?.value) page().catch(() => {});
    }, 2000);
  }
  try {
    await page();
  } catch (e) {
    if (e.status === 401) return loginPage("Your session ended; sign in again.");
    draw(el("p", { class: "error", role: "alert" }, e.message));
  }
  signedIn(me);
}

document.getElementById("signout").addEventListener("click", async () => {
  try { await api("POST", "/api/v1/logout"); } catch { /* signed out either way */ }
  location.hash = "#/login";
  loginPage();
});
window.addEventListener("hashchange", route);
route();
