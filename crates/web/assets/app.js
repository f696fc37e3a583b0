// gostint's web UI (SPEC §8): login against Vault, the job form with the secure mode-B
// submission, the job view (live stream, else polling), history and queues. Every API path
// is relative to the page, so the UI works behind a path-based ingress. Any 403 from
// gostint ends the session and returns to the login page.
import { el, clear, fmtTime, fmtDuration, timeMs, b64Bytes, b64Utf8, shellSplit, FINAL, STATUSES } from "./util.js";
import { Vault, VaultError } from "./vault.js";
import { ansiToFragment } from "./ansi.js";

const $ = (id) => document.getElementById(id);

/** The session, in memory only: a reload or Logout signs out. */
let session = null;
/** Stops the current view's timers and streams. */
let stopView = () => {};
/** Where to go after login. */
let afterLogin = "#run";

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ------------------------------------------------------------------ gostint API
async function api(method, path, body) {
  if (!session) throw new ApiError(403, "not logged in");
  let resp;
  // A GET that fails at the network level (a dropped keep-alive connection, a busy node) is
  // tried again twice; other methods are not repeated (they might have arrived).
  for (let attempt = 0; ; attempt++) {
    try {
      resp = await fetch(path, {
        method,
        headers: { "X-Auth-Token": session.apiToken, ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        cache: "no-store",
      });
      break;
    } catch {
      if (method !== "GET" || attempt >= 2) throw new ApiError(0, "gostint is unreachable");
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
      if (!session) throw new ApiError(403, "not logged in");
    }
  }
  if (resp.status === 403) {
    expired();
    throw new ApiError(403, "permission denied");
  }
  const text = await resp.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  if (!resp.ok) {
    const msg = json && json.error ? `${json.status} ${json.error}` : `${resp.status} ${text.trim()}`;
    throw new ApiError(resp.status, msg);
  }
  return json;
}

function expired() {
  session = null;
  afterLogin = location.hash && location.hash !== "#login" ? location.hash : "#run";
  flash("Your session has expired or was refused by Vault: please log in again.");
  location.hash = "#login";
  route();
}

function flash(msg) {
  const f = $("flash");
  f.textContent = msg || "";
  f.hidden = !msg;
}

function showError(id, err) {
  const p = $(id);
  p.textContent = err ? String(err.message || err) : "";
  p.hidden = !err;
}

// ------------------------------------------------------------------ routing
const VIEWS = ["login", "run", "job", "history", "queues"];

function show(name, title) {
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== name;
  for (const v of ["run", "history", "queues"]) {
    const a = $(`nav-${v}`);
    if (v === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  $("nav").hidden = !session;
  $("logout").hidden = !session;
  $("who").textContent = session ? `Logged in as ${session.name}` : "";
  document.title = `${title} · gostint`;
}

function route() {
  stopView();
  stopView = () => {};
  const hash = location.hash || "#run";
  if (!session) {
    if (hash !== "#login") afterLogin = hash;
    show("login", "Log in");
    loginView();
    return;
  }
  const m = /^#job\/([0-9a-fA-F]{24})$/.exec(hash);
  if (m) { show("job", `Job ${m[1]}`); jobView(m[1].toLowerCase()); return; }
  if (hash === "#history") { show("history", "History"); historyView(); return; }
  if (hash === "#queues") { show("queues", "Queues"); queuesView(); return; }
  if (hash === "#login") { location.hash = "#run"; return; }
  show("run", "Run a job");
  $("run-h").focus();
}

// ------------------------------------------------------------------ login
let vaultInfo = null;

async function vaultAddr() {
  if (!vaultInfo) {
    const r = await fetch("v1/api/vault/info", { cache: "no-store" });
    if (!r.ok) throw new Error(`gostint's v1/api/vault/info answered ${r.status}`);
    vaultInfo = await r.json();
  }
  return vaultInfo.vault_external_addr || vaultInfo.vault_addr;
}

function loginView() {
  vaultAddr().then((a) => { $("login-vault").textContent = a; }).catch((e) => showError("login-error", e));
  const method = document.querySelector("input[name=login-method]:checked").value;
  (method === "token" ? $("login-token") : $("login-user")).focus();
}

function loginMethodChanged() {
  const up = $("login-method-userpass").checked;
  $("login-userpass-fields").hidden = !up;
  $("login-token-fields").hidden = up;
}

async function login(ev) {
  ev.preventDefault();
  showError("login-error", null);
  const btn = $("login-submit");
  btn.disabled = true;
  try {
    const vault = new Vault(await vaultAddr());
    const userpass = $("login-method-userpass").checked;
    let userToken;
    let ownToken = false;
    if (userpass) {
      const user = $("login-user").value.trim();
      const pass = $("login-pass").value;
      if (!user || !pass) throw new Error("Enter your username and password.");
      const r = await vault.call("POST", `auth/userpass/login/${encodeURIComponent(user)}`, null, { password: pass });
      userToken = r.auth && r.auth.client_token;
      if (!userToken) throw new Error("Vault's userpass login returned no token.");
      ownToken = true;
    } else {
      userToken = $("login-token").value.trim();
      if (!userToken) throw new Error("Enter a Vault token.");
    }
    const self = await vault.call("GET", "auth/token/lookup-self", userToken);
    const created = await vault.call("POST", "auth/token/create", userToken,
      { policies: ["default"], ttl: "6h", display_name: "gostint_ui" });
    const apiToken = created.auth && created.auth.client_token;
    if (!apiToken) throw new Error("Vault created no login token.");
    const d = self.data || {};
    session = {
      vault, userToken, apiToken, ownToken,
      name: (d.meta && d.meta.username) || d.display_name || "token",
    };
    $("login-token").value = "";
    $("login-pass").value = "";
    flash("");
    await loadTenants();
    const target = afterLogin && afterLogin !== "#login" ? afterLogin : "#run";
    if (location.hash === target) route(); else location.hash = target;
  } catch (e) {
    const msg = e instanceof VaultError && (e.status === 400 || e.status === 403)
      ? `Login refused by Vault: ${e.message}` : e.message;
    showError("login-error", new Error(msg));
  } finally {
    btn.disabled = false;
  }
}

/**
 * The job form's tenant: the tenants the user's own Vault token may request a secret-id for,
 * as gostint asks Vault (GET v1/api/tenants). The login token itself never goes to gostint:
 * the page sends a child of it (same policies) that lives 60 s for three uses, enough for
 * gostint's token check and its capabilities-self call. A select when there are
 * several; hidden (the one tenant fixed) when there is one. Without an answer (an older
 * server, the unnamed single tenant) the form keeps the default AppRole, gostint-role.
 */
async function loadTenants() {
  let names = [];
  try {
    const probe = await session.vault.call("POST", "auth/token/create", session.userToken,
      { ttl: "60s", num_uses: 3, display_name: "gostint_ui_tenants" });
    const token = probe.auth && probe.auth.client_token;
    const resp = await fetch("v1/api/tenants", { headers: { "X-Auth-Token": token }, cache: "no-store" });
    if (resp.ok) names = ((await resp.json()) || {}).tenants || [];
  } catch {
    names = [];
  }
  if (!names.length) names = ["gostint-role"];
  const sel = $("f-approle");
  clear(sel);
  names.forEach((n, i) => sel.append(el("option", { value: n, selected: i === 0 }, n)));
  $("tenant-row").hidden = names.length < 2;
}

async function logout() {
  const s = session;
  session = null;
  afterLogin = "#run";
  location.hash = "#login";
  route();
  if (s) {
    // Best effort: the login token, and a userpass token this page made.
    s.vault.call("POST", "auth/token/revoke-self", s.apiToken).catch(() => {});
    if (s.ownToken) s.vault.call("POST", "auth/token/revoke-self", s.userToken).catch(() => {});
  }
}

// ------------------------------------------------------------------ job form
function kvRow(container, kind, a = "", b = "") {
  const n = container.querySelectorAll(".kv-row").length + 1;
  const [la, lb, pa, pb] = kind === "secret"
    ? [`Secret ${n}: variable`, `Secret ${n}: Vault path.key`, "mysecret", "kv/data/app.password"]
    : [`Variable ${n}: name`, `Variable ${n}: value`, "NAME", "value"];
  const ida = `kv-${kind}-${n}-a-${Math.random().toString(36).slice(2, 8)}`;
  const idb = ida.replace("-a-", "-b-");
  const inA = el("input", { type: "text", id: ida, class: "kv-a", placeholder: pa, spellcheck: "false", autocomplete: "off" });
  const inB = el("input", { type: "text", id: idb, class: "kv-b", placeholder: pb, spellcheck: "false", autocomplete: "off" });
  inA.value = a;
  inB.value = b;
  const rm = el("button", { type: "button", class: "icon", "aria-label": `Remove ${kind === "secret" ? "secret" : "variable"} ${n}` }, "✕");
  const row = el("div", { class: "kv-row" },
    el("div", {}, el("label", { for: ida }, la), inA),
    el("div", {}, el("label", { for: idb }, lb), inB),
    rm);
  rm.addEventListener("click", () => row.remove());
  container.append(row);
  return inA;
}

function kvValues(fieldset) {
  return [...fieldset.querySelectorAll(".kv-row")]
    .map((r) => [r.querySelector(".kv-a").value.trim(), r.querySelector(".kv-b").value])
    .filter(([a, b]) => a !== "" || b.trim() !== "");
}

const SECRET_VAR = /^[0-9A-Za-z_]+$/;
const SECRET_PATH_KEY = /^[0-9A-Za-z_/-]+\.[0-9A-Za-z_-]+$/;

async function buildJob() {
  const job = {};
  const image = $("f-image").value.trim();
  const file = $("f-content").files[0];
  if (!image && !file) throw new Error("Enter a container image (or give content whose gostint.yml names one).");
  if (image) job.container_image = image;
  const run = $("f-run").value.trim();
  if (run) {
    try { job.run = shellSplit(run); } catch (e) { throw new Error(`Run command: ${e.message}`); }
  }
  const ep = $("f-entrypoint").value.trim();
  if (ep) {
    try { job.entrypoint = shellSplit(ep); } catch (e) { throw new Error(`Entrypoint: ${e.message}`); }
  }
  const qname = $("f-qname").value.trim();
  if (qname) job.qname = qname;
  const wd = $("f-workdir").value.trim();
  if (wd) job.working_directory = wd;
  job.image_pull_policy = $("f-pull").value;
  job.secret_file_type = $("f-secfile").value;
  job.cont_on_warnings = $("f-cow").checked;
  job.tty = $("f-tty").checked;
  const refs = [];
  for (const [v, pk] of kvValues($("kv-secrets"))) {
    if (!SECRET_VAR.test(v)) throw new Error(`Secret variable "${v}" may hold only letters, digits and _.`);
    if (!SECRET_PATH_KEY.test(pk.trim())) throw new Error(`Secret "${v}": "${pk}" is not a Vault path.key (e.g. kv/data/app.password).`);
    refs.push(`${v}@${pk.trim()}`);
  }
  if (refs.length) job.secret_refs = refs;
  const env = [];
  for (const [k, v] of kvValues($("kv-env"))) {
    if (!k || k.includes("=")) throw new Error(`Environment variable name "${k}" must be non-empty and without "=".`);
    env.push(`${k}=${v}`);
  }
  if (env.length) job.env_vars = env;
  if (file) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
      throw new Error(`Content "${file.name}" is not gzip-compressed: give a .tar.gz.`);
    }
    job.content = `targz,${b64Bytes(bytes)}`;
  }
  return job;
}

/** The §7 mode-B flow, in the browser, with the user's Vault token. */
async function runJob(ev) {
  ev.preventDefault();
  showError("run-error", null);
  const progress = $("run-progress");
  const btn = $("run-submit");
  btn.disabled = true;
  try {
    const job = await buildJob();
    const approle = $("f-approle").value || "gostint-role";
    const v = session.vault;
    const role = encodeURIComponent(approle);
    progress.textContent = "Requesting a wrapped secret-id…";
    const sid = await v.call("POST", `auth/approle/role/${role}/secret-id`, session.userToken, {},
      { "X-Vault-Wrap-TTL": "300" });
    const wrap = sid.wrap_info && sid.wrap_info.token;
    if (!wrap) throw new Error("Vault did not wrap the secret-id.");
    progress.textContent = "Encrypting the job with transit…";
    const encd = await v.call("POST", `transit/encrypt/${role}`, session.userToken, { plaintext: b64Utf8(JSON.stringify(job)) });
    const ciphertext = encd.data && encd.data.ciphertext;
    if (!ciphertext) throw new Error("Vault returned no ciphertext.");
    progress.textContent = "Parking it in a cubbyhole…";
    const cub = await v.call("POST", "auth/token/create", session.userToken,
      { policies: ["default"], ttl: "1h", num_uses: 2, display_name: "gostint_ui_cubby" });
    const cubby = cub.auth && cub.auth.client_token;
    if (!cubby) throw new Error("Vault created no cubbyhole token.");
    await v.call("POST", "cubbyhole/job", cubby, { payload: ciphertext });
    progress.textContent = "Submitting…";
    const res = await api("POST", "v1/api/job", {
      qname: job.qname || "", cubby_token: cubby, cubby_path: "cubbyhole/job", wrap_secret_id: wrap, tty: job.tty,
    });
    progress.textContent = "";
    location.hash = `#job/${res._id}`;
  } catch (e) {
    progress.textContent = "";
    if (!(e instanceof ApiError && e.status === 403)) showError("run-error", e);
  } finally {
    btn.disabled = false;
  }
}

function clearForm() {
  $("run-form").reset();
  for (const fs of [$("kv-secrets"), $("kv-env")]) clear(fs.querySelector(".kv-rows"));
  showError("run-error", null);
  $("f-image").focus();
}

function toggleAdvanced() {
  const adv = $("advanced");
  adv.hidden = !adv.hidden;
  const b = $("run-advanced");
  b.textContent = adv.hidden ? "Advanced" : "Simple";
  b.setAttribute("aria-expanded", String(!adv.hidden));
}

// ------------------------------------------------------------------ job view
function statusBadge(node, status) {
  node.textContent = status;
  node.className = `status st-${status}`;
}

function renderJob(job) {
  $("job-id").textContent = job._id;
  statusBadge($("job-status"), job.status);
  $("job-qname").textContent = job.qname || "(default)";
  $("job-tenant").textContent = job.tenant || "";
  $("job-image").textContent = job.container_image || "";
  $("job-tty").textContent = job.tty ? "on" : "off";
  $("job-submitted").textContent = fmtTime(job.submitted);
  $("job-started").textContent = fmtTime(job.started);
  $("job-ended").textContent = fmtTime(job.ended);
  $("job-rc").textContent = FINAL.has(job.status) ? String(job.return_code) : "";
  renderOutput(job.output, job.stderr);
  const final = FINAL.has(job.status);
  $("job-kill").disabled = final;
  $("job-delete").disabled = job.status === "running" || job.status === "stopping";
}

function renderOutput(out, err) {
  clear($("job-output")).append(ansiToFragment(out || ""));
  clear($("job-stderr")).append(ansiToFragment(err || ""));
}

function jobView(id) {
  let stopped = false;
  let timer = null;
  const ctl = new AbortController();
  stopView = () => { stopped = true; clearTimeout(timer); ctl.abort(); };
  for (const k of ["job-status", "job-qname", "job-tenant", "job-image", "job-tty", "job-submitted", "job-started", "job-ended", "job-rc", "job-mode"]) $(k).textContent = "";
  $("job-id").textContent = id;
  renderOutput("", "");
  showError("job-error", null);
  $("job-h").focus();

  const poll = async () => {
    if (stopped) return;
    $("job-mode").textContent = "polling every 2 s";
    try {
      const job = await api("GET", `v1/api/job/${id}`);
      if (stopped) return;
      showError("job-error", null);
      renderJob(job);
      if (FINAL.has(job.status)) { $("job-mode").textContent = "final"; return; }
    } catch (e) {
      if (stopped || e.status === 403) return;
      showError("job-error", e);
      if (e.status === 404) return;
    }
    timer = setTimeout(poll, 2000);
  };

  (async () => {
    let job;
    try {
      job = await api("GET", `v1/api/job/${id}`);
    } catch (e) {
      if (e.status === 403 || stopped) return;
      showError("job-error", e);
      // Unreachable or a server error: keep trying; a 4xx (bad or invisible id) is final.
      if (e.status === 0 || e.status >= 500) timer = setTimeout(poll, 2000);
      return;
    }
    if (stopped) return;
    renderJob(job);
    if (FINAL.has(job.status)) { $("job-mode").textContent = "final"; return; }
    const ended = await followStream(id, ctl.signal, () => stopped);
    if (!ended) poll();
  })();
}

/**
 * Follows v1/api/job/{id}/stream (server-sent events: stdout, stderr, status, end). Read with
 * fetch rather than EventSource because EventSource cannot send X-Auth-Token. Returns true
 * when the stream delivered the end, false when it is missing (404) or broke (then the
 * caller polls, which shows the whole output again).
 */
async function followStream(id, signal, isStopped) {
  let resp;
  try {
    resp = await fetch(`v1/api/job/${id}/stream`, {
      headers: { "X-Auth-Token": session.apiToken, Accept: "text/event-stream" }, signal, cache: "no-store",
    });
  } catch {
    return false;
  }
  if (resp.status === 403) { expired(); return true; }
  const ctype = resp.headers.get("Content-Type") || "";
  if (!resp.ok || !ctype.startsWith("text/event-stream") || !resp.body) return false;
  $("job-mode").textContent = "live";
  let out = "";
  let err = "";
  let pending = false;
  const paint = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; renderOutput(out, err); });
  };
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || isStopped()) return false;
      buf += value.replace(/\r\n?/g, "\n");
      let sep;
      while ((sep = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, sep);
        buf = buf.slice(sep + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          let val = i < 0 ? "" : line.slice(i + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
        }
        const text = data.join("\n");
        if (event === "stdout") { out += text; paint(); }
        else if (event === "stderr") { err += text; paint(); }
        else if (event === "status") statusBadge($("job-status"), streamStatus(text));
        else if (event === "end") {
          try { renderJob(JSON.parse(text)); } catch { return false; }
          $("job-mode").textContent = "final";
          return true;
        }
      }
    }
  } catch {
    return false;
  }
}

/** A status event's data: a bare status, a JSON string, or an object with `status`. */
function streamStatus(text) {
  try {
    const v = JSON.parse(text);
    if (typeof v === "string") return v;
    if (v && typeof v.status === "string") return v.status;
  } catch { /* a bare word */ }
  return text.trim();
}

async function killJob() {
  const id = $("job-id").textContent;
  showError("job-error", null);
  try {
    await api("POST", `v1/api/job/kill/${id}`);
    flash(`Kill requested for job ${id}.`);
  } catch (e) {
    if (e.status !== 403) showError("job-error", e);
  }
}

async function deleteJob(id) {
  if (!confirm(`Delete job ${id}?`)) return false;
  await api("DELETE", `v1/api/job/${id}`);
  flash(`Job ${id} deleted.`);
  return true;
}

// ------------------------------------------------------------------ history
const hist = { skip: 0, filtered: null };

/** Every job the caller may see (newest first), at most `cap`. */
async function allJobs(cap) {
  const jobs = [];
  let skip = 0;
  let total = Infinity;
  while (skip < total && jobs.length < cap) {
    const page = await api("GET", `v1/api/job?skip=${skip}`);
    total = page.total;
    if (!page.data.length) break;
    jobs.push(...page.data);
    skip += page.data.length;
  }
  return { jobs, total: total === Infinity ? 0 : total };
}

const SCAN_CAP = 1000;

async function loadHistory() {
  showError("hist-error", null);
  const status = $("hist-status").value;
  let rows;
  let total;
  let limit = 10;
  try {
    if (status) {
      // The API has no status filter: scan the caller's jobs and page here.
      const { jobs, total: all } = await allJobs(SCAN_CAP);
      const match = jobs.filter((j) => j.status === status);
      total = match.length;
      if (hist.skip >= total && total > 0) hist.skip = Math.floor((total - 1) / 10) * 10;
      rows = match.slice(hist.skip, hist.skip + 10);
      $("hist-caption").textContent = `Your ${status} jobs, newest first` + (all > SCAN_CAP ? ` (among the newest ${SCAN_CAP})` : "");
    } else {
      const page = await api("GET", `v1/api/job?skip=${hist.skip}`);
      rows = page.data;
      total = page.total;
      limit = page.limit || 10;
      $("hist-caption").textContent = "Your jobs, newest first";
    }
  } catch (e) {
    if (e.status !== 403) showError("hist-error", e);
    return;
  }
  const body = clear($("hist-rows"));
  for (const j of rows) {
    const del = el("button", { type: "button", class: "icon", "aria-label": `Delete job ${j._id}`, title: "Delete" }, trashIcon());
    del.disabled = j.status === "running" || j.status === "stopping";
    del.addEventListener("click", async () => {
      try { if (await deleteJob(j._id)) loadHistory(); } catch (e) { if (e.status !== 403) showError("hist-error", e); }
    });
    const st = el("span", { class: `status st-${j.status}` }, j.status);
    body.append(el("tr", { "data-id": j._id },
      el("td", { class: "id" }, el("a", { href: `#job/${j._id}` }, j._id)),
      el("td", {}, st),
      el("td", {}, j.qname || "(default)"),
      el("td", {}, j.container_image || ""),
      el("td", {}, fmtTime(j.submitted)),
      el("td", {}, fmtTime(j.ended)),
      el("td", {}, del)));
  }
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "7" }, "No jobs.")));
  const from = total ? hist.skip + 1 : 0;
  const to = hist.skip + rows.length;
  $("hist-page").textContent = `Jobs ${from}–${to} of ${total}`;
  $("hist-prev").disabled = hist.skip === 0;
  $("hist-next").disabled = hist.skip + limit >= total;
}

/** A trash-can icon drawn in SVG (no icon font, no emoji font needed). */
function trashIcon() {
  const g = svg("svg", { viewBox: "0 0 16 16", width: 16, height: 16, "aria-hidden": "true", focusable: "false", class: "trash" });
  g.append(svg("path", { d: "M2.5 4h11M6 4V2.5h4V4M4 4l.8 9.5h6.4L12 4M6.7 6.5v5M9.3 6.5v5" }));
  return g;
}

function historyView() {
  let timer = null;
  let stopped = false;
  const tick = () => {
    clearTimeout(timer);
    if (!stopped && $("hist-auto").checked) {
      timer = setTimeout(async () => { if (!stopped) { await loadHistory(); tick(); } }, 10000);
    }
  };
  stopView = () => { stopped = true; clearTimeout(timer); };
  historyView.tick = tick;
  loadHistory().then(tick);
  $("history-h").focus();
}

// ------------------------------------------------------------------ queues
const QUEUE_CAP = 500;
const CHART_HOURS = 6;

async function loadQueues() {
  showError("queues-error", null);
  let jobs;
  let total;
  try {
    ({ jobs, total } = await allJobs(QUEUE_CAP));
  } catch (e) {
    if (e.status !== 403) showError("queues-error", e);
    return;
  }
  $("queues-note").textContent = total > jobs.length
    ? `From your newest ${jobs.length} of ${total} jobs.` : `From your ${jobs.length} jobs.`;
  const queues = new Map();
  for (const j of jobs) {
    const q = queues.get(j.qname) || { running: null, queued: 0, last: null };
    if (j.status === "running" || j.status === "stopping") q.running = q.running || j;
    if (j.status === "queued") q.queued++;
    if (FINAL.has(j.status) && (!q.last || (timeMs(j.ended) || 0) > (timeMs(q.last.ended) || 0))) q.last = j;
    queues.set(j.qname, q);
  }
  const body = clear($("queues-rows"));
  for (const [name, q] of [...queues.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    body.append(el("tr", { "data-queue": name },
      el("td", {}, name || "(default)"),
      el("td", {}, q.running ? el("a", { href: `#job/${q.running._id}` }, `${q.running._id} (${q.running.status})`) : "—"),
      el("td", {}, String(q.queued)),
      el("td", {}, q.last ? el("a", { href: `#job/${q.last._id}`, class: `st-${q.last.status}` }, q.last.status) : "—"),
      el("td", {}, q.last ? fmtTime(q.last.ended) : "")));
  }
  if (!queues.size) body.append(el("tr", {}, el("td", { colspan: "5" }, "No queues yet: run a job.")));
  drawChart(jobs);
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Duration (started → ended) of each job that ended in the last hours, coloured by outcome. */
function drawChart(jobs) {
  const now = Date.now();
  const from = now - CHART_HOURS * 3600 * 1000;
  const pts = [];
  for (const j of jobs) {
    const s = timeMs(j.started);
    const e = timeMs(j.ended);
    if (!FINAL.has(j.status) || e === null || e < from) continue;
    pts.push({ id: j._id, status: j.status, t: e, d: s === null ? 0 : Math.max(0, (e - s) / 1000) });
  }
  const W = 720, H = 240, L = 56, R = 12, T = 12, B = 34;
  const maxD = Math.max(1, ...pts.map((p) => p.d));
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200].find((s) => maxD / s <= 5) || 3600 * 4;
  const top = Math.ceil(maxD / step) * step;
  const x = (t) => L + ((t - from) / (now - from)) * (W - L - R);
  const y = (d) => T + (1 - d / top) * (H - T - B);
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "chart-caption chart-summary" });
  for (let v = 0; v <= top; v += step) {
    g.append(svg("line", { class: "grid-line", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    g.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmtDuration(v)));
  }
  for (let h = 0; h <= CHART_HOURS; h++) {
    const t = from + h * 3600 * 1000;
    const label = h === CHART_HOURS ? "now" : `-${CHART_HOURS - h} h`;
    g.append(svg("text", { x: x(t), y: H - 12, "text-anchor": "middle" }, label));
  }
  g.append(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
  g.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  for (const p of pts) {
    const c = svg("circle", { class: `pt pt-${p.status}`, cx: x(p.t).toFixed(1), cy: y(p.d).toFixed(1), r: 5 });
    c.append(svg("title", {}, `${p.id}: ${p.status}, ${fmtDuration(p.d)}, ended ${fmtTime(new Date(p.t).toISOString())}`));
    g.append(c);
  }
  const box = clear($("chart"));
  box.append(g);
  const counts = {};
  for (const p of pts) counts[p.status] = (counts[p.status] || 0) + 1;
  const legend = el("div", { class: "legend" },
    ...["success", "failed", "notauthorised", "unknown"].map((s) => el("span", { class: `st-${s}` }, `${s}: ${counts[s] || 0}`)));
  box.append(legend);
  $("chart-summary").textContent = pts.length
    ? `${pts.length} jobs ended in the last ${CHART_HOURS} hours; the longest took ${fmtDuration(maxD)}.`
    : `No job ended in the last ${CHART_HOURS} hours.`;
}

function queuesView() {
  let timer = null;
  let stopped = false;
  const tick = () => {
    if (!stopped) timer = setTimeout(async () => { if (!stopped) { await loadQueues(); tick(); } }, 10000);
  };
  stopView = () => { stopped = true; clearTimeout(timer); };
  loadQueues().then(tick);
  $("queues-h").focus();
}

// ------------------------------------------------------------------ wiring
function init() {
  for (const s of STATUSES) $("hist-status").append(el("option", { value: s }, s));
  $("login-form").addEventListener("submit", login);
  for (const r of document.querySelectorAll("input[name=login-method]")) r.addEventListener("change", loginMethodChanged);
  $("logout").addEventListener("click", logout);
  $("run-form").addEventListener("submit", runJob);
  $("run-clear").addEventListener("click", clearForm);
  $("run-advanced").addEventListener("click", toggleAdvanced);
  for (const [id, kind] of [["kv-secrets", "secret"], ["kv-env", "env"]]) {
    const fs = $(id);
    fs.querySelector(".kv-add").addEventListener("click", () => kvRow(fs.querySelector(".kv-rows"), kind).focus());
  }
  $("job-kill").addEventListener("click", killJob);
  $("job-delete").addEventListener("click", async () => {
    const id = $("job-id").textContent;
    try { if (await deleteJob(id)) location.hash = "#history"; } catch (e) { if (e.status !== 403) showError("job-error", e); }
  });
  $("hist-prev").addEventListener("click", () => { hist.skip = Math.max(0, hist.skip - 10); loadHistory(); });
  $("hist-next").addEventListener("click", () => { hist.skip += 10; loadHistory(); });
  $("hist-status").addEventListener("change", () => { hist.skip = 0; loadHistory(); });
  $("hist-refresh").addEventListener("click", () => loadHistory());
  $("hist-auto").addEventListener("change", () => historyView.tick && historyView.tick());
  window.addEventListener("hashchange", route);
  route();
}

init();
