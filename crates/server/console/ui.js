// What every page of the console shares: the API call, element building (text is always set
// as text, never parsed as HTML) and the formatting of figures.

export const main = document.getElementById("main");
export const STATES = ["NotStarted", "Running", "Paused", "Modifying", "Failed", "Completed", "Stopped", "Released"];

/** Calls the API; throws {status, message, field} on an error answer. */
export async function api(method, path, body) {
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
export function el(tag, attrs = {}, ...children) {
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

export function show(...nodes) {
  main.replaceChildren(...nodes);
  main.focus();
}

// Pages draw after awaiting the API, so a page the user has left can answer late: a slow
// projects list once drew over the token form the user had gone to and was filling in.
let navigation = 0;

/** The user went to another page (route): draws of the pages started before are dropped. */
export function navigated() {
  navigation += 1;
}

/** `show` for a page starting now: it draws only while no navigation came after. */
export function drawer() {
  const at = navigation;
  return (...nodes) => {
    if (at === navigation) show(...nodes);
  };
}

export const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : "—");
export const fmtLatency = (ms) => (ms === null || ms === undefined ? "—" : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);
export const fmtRate = (c) => (c && typeof c.rows_per_s === "number" ? c.rows_per_s.toFixed(0) : "—");
export const fmtBytes = (n) => (typeof n !== "number" ? "—" : n < 1024 ? `${n.toFixed(0)} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
