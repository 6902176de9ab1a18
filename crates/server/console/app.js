// The Sluice console: pages rendered in the browser from the service's own JSON API (the same
// calls a script makes), no build step, no framework. The session is the `sluice_session`
// cookie the login sets (HttpOnly, SameSite=Strict).

const main = document.getElementById("main");
const STATES = ["NotStarted", "Running", "Paused", "Modifying", "Failed", "Completed", "Stopped", "Released"];

/** Calls the API; throws {status, message, field} on an error answer. */
async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.headers["content-type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch { v = null; }
  if (!r.ok) {
    const e = new Error((v && v.error) || `HTTP ${r.status}`);
    e.status = r.status;
    e.field = v && v.field;
    throw e;
  }
  return v;
}

/** An element with attributes and children (text is always set as text, never as HTML). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
  main.focus();
}

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
      if (!location.hash || location.hash === "#/login") location.hash = "#/projects";
      route();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  show(form);
  form.password.focus();
}

const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : "—");
const fmtLatency = (ms) => (ms === null || ms === undefined ? "—" : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);
const fmtRate = (c) => (c && typeof c.rows_per_s === "number" ? c.rows_per_s.toFixed(0) : "—");

async function projectsPage() {
  const all = await api("GET", "/api/v1/projects");
  const filter = el("select", { id: "state-filter" },
    el("option", { value: "" }, "every state"),
    STATES.map((s) => el("option", { value: s }, s)));
  const body = el("tbody");
  const fill = () => {
    const rows = all.filter((p) => !filter.value || p.state === filter.value);
    body.replaceChildren(...rows.map((p) => el("tr", { "data-project": p.name },
      el("td", {}, p.name),
      el("td", {}, `${p.source ?? "—"} → ${p.destination ?? "—"}`),
      el("td", {}, p.stage || "—"),
      el("td", {}, el("span", { class: `state state-${p.state}` }, p.state)),
      el("td", {}, fmtTime(p.checkpoint && p.checkpoint.ts_ms)),
      el("td", {}, fmtLatency(p.latency_ms)),
      el("td", {}, fmtRate(p.writer)))));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No project in this state.")));
  };
  filter.addEventListener("change", fill);
  fill();
  show(el("h1", {}, "Projects"),
    el("div", { class: "toolbar" }, el("label", { for: "state-filter" }, "State"), filter),
    el("table", { id: "projects" },
      el("thead", {}, el("tr", {}, ["Name", "Source → destination", "Stage", "State", "Checkpoint", "Latency", "Rows/s"].map((h) => el("th", { scope: "col" }, h)))),
      body));
}

/** Where a data source points, as one line. */
function addressOf(d) {
  if (d.host) return `${d.host}:${d.port ?? 3306}`;
  return d.brokers || d.namesrv || d.endpoint || "—";
}

async function datasourcesPage() {
  const all = await api("GET", "/api/v1/datasources");
  show(el("h1", {}, "Data sources"),
    el("table", { id: "datasources" },
      el("thead", {}, el("tr", {}, ["Name", "Kind", "Address", "User", "In use by"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, all.length ? all.map((d) => el("tr", { "data-datasource": d.name },
        el("td", {}, d.name), el("td", {}, d.kind), el("td", {}, addressOf(d)),
        el("td", {}, d.user || d.access_id || "—"),
        el("td", {}, d.used_by.length ? d.used_by.join(", ") : "—")))
        : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No data source yet.")))));
}

async function route() {
  let me;
  try {
    me = await api("GET", "/api/v1/me");
  } catch (e) {
    if (e.status === 401) return loginPage();
    return show(el("p", { class: "error", role: "alert" }, e.message));
  }
  signedIn(me);
  const page = location.hash.startsWith("#/datasources") ? datasourcesPage : projectsPage;
  try {
    await page();
  } catch (e) {
    if (e.status === 401) return loginPage("Your session ended; sign in again.");
    show(el("p", { class: "error", role: "alert" }, e.message));
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
