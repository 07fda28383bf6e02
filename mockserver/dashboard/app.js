// The mockserver dashboard: plain JavaScript, no build step, nothing loaded from elsewhere.
//
// Everything shown comes from the admin API (/__mock/...) and from the event stream
// /__mock/stream (Server-Sent Events: request, delivery, scenario, reset). The stream is read
// with fetch() rather than EventSource, because EventSource cannot send the admin token as a
// header and a token in the URL would end up in logs and history.
//
// Every value from the mock is put on the page with textContent, never as HTML: paths, headers
// and bodies are whatever a client sent.
"use strict";

(() => {
  const BASE = location.pathname.replace(/[^/]*$/, ""); // "/__mock/"
  const MAX_REQUESTS = 1000;
  const MAX_ATTEMPTS = 500;
  const TOKEN_KEY = "mockserver.admin-token";
  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    requests: [], // newest first: {key, entry, el, row, detail, haystack}
    byKey: new Map(),
    attempts: [], // newest first
    attemptKeys: new Set(),
    scenarios: [],
    uses: [],
    scenario: null,
    webhooks: null,
    lastEventId: 0,
    running: false,
    seq: 0,
  };

  // ------------------------------------------------------------------ small helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") el.className = value;
      else if (name === "text") el.textContent = value;
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const time = (iso) => (typeof iso === "string" && iso.length >= 19 ? iso.slice(11, 23).replace(/Z$/, "") : "");
  const json = (value) => JSON.stringify(value, null, 2);

  function later(fn, ms = 100) {
    let timer = null;
    return () => {
      if (timer !== null) return;
      timer = setTimeout(() => { timer = null; guarded(fn)(); }, ms);
    };
  }

  let flashTimer = null;
  function flash(message, note = false) {
    const el = $("flash");
    el.textContent = message;
    el.classList.toggle("note", note);
    el.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { el.hidden = true; }, 6000);
  }

  function setConnection(kind, text) {
    const el = $("connection");
    el.textContent = text;
    el.classList.toggle("live", kind === "live");
    el.classList.toggle("down", kind === "down");
  }

  // ------------------------------------------------------------------ talking to the mock

  class Unauthorised extends Error {}
  class Failed extends Error {}

  function headers(extra) {
    const out = new Headers(extra || {});
    if (state.token) out.set("X-Admin-Token", state.token);
    return out;
  }

  async function api(path, options = {}) {
    const sent = headers(options.headers);
    let body;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      sent.set("Content-Type", "application/json");
    }
    const resp = await fetch(BASE + path, { method: options.method || "GET", headers: sent, body, cache: "no-store" });
    if (resp.status === 401) throw new Unauthorised("the admin token was not accepted");
    const text = await resp.text();
    let value = text;
    try { value = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: keep the text */ }
    if (!resp.ok) {
      const why = value && typeof value === "object" ? (value.message || value.detail || text) : text;
      throw new Failed(`${resp.status}: ${why}`);
    }
    return value;
  }

  // Runs an async action; a refused token locks the page, any other failure is shown.
  function guarded(fn) {
    return async (...args) => {
      try {
        return await fn(...args);
      } catch (err) {
        if (err instanceof Unauthorised) lock("The admin token was not accepted; enter it again.");
        else flash(String(err.message || err));
      }
    };
  }

  // ------------------------------------------------------------------ the stream

  async function runStream() {
    if (state.running) return;
    state.running = true;
    let wait = 250;
    while (state.running) {
      try {
        const resp = await fetch(BASE + "stream", {
          headers: headers({ Accept: "text/event-stream", "Last-Event-ID": String(state.lastEventId) }),
          cache: "no-store",
        });
        if (resp.status === 401) throw new Unauthorised("the admin token was not accepted");
        if (!resp.ok || !resp.body) throw new Failed(`the stream answered ${resp.status}`);
        setConnection("live", "live");
        wait = 250;
        // The stream is open before the snapshots are read, so nothing in between is missed;
        // what both carry is merged.
        guarded(refreshAll)();
        await readEvents(resp.body);
      } catch (err) {
        if (err instanceof Unauthorised) {
          lock("The admin token was not accepted; enter it again.");
          return;
        }
      }
      if (!state.running) return;
      setConnection("down", "reconnecting…");
      await sleep(wait);
      wait = Math.min(wait * 2, 5000);
    }
  }

  async function readEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let kind = "message";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        if (line === "") {
          if (data.length) dispatch(kind, data.join("\n"));
          kind = "message";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") kind = val;
        else if (field === "data") data.push(val);
        else if (field === "id" && /^\d+$/.test(val)) state.lastEventId = Number(val);
      }
    }
  }

  const refreshWebhooks = later(loadWebhooks);
  const refreshUses = later(loadUses);
  const refreshScenarios = later(async () => { await loadScenarios(); await loadUses(); });

  function dispatch(kind, text) {
    let data;
    try { data = JSON.parse(text); } catch (_) { return; }
    if (kind === "request") {
      addRequest(data);
      updateRequestCount();
      if (data.scenario) refreshUses();
      if (data.method !== "GET") refreshWebhooks();
    } else if (kind === "delivery") {
      if (data.attempt) addAttempt(data.attempt, true);
      if (data.webhook) patchLine(data.webhook);
      refreshWebhooks();
    } else if (kind === "scenario") {
      state.scenario = data;
      renderScenarioState();
      refreshScenarios();
    } else if (kind === "reset") {
      clearRequests();
      state.attempts = [];
      state.attemptKeys.clear();
      renderAttempts();
      if (data.scenario) { state.scenario = data.scenario; renderScenarioState(); }
      guarded(refreshAll)();
    }
  }

  async function refreshAll() {
    await Promise.all([loadRequests(), loadScenarioState(), loadScenarios(), loadUses(), loadDeliveries(), loadWebhooks()]);
  }

  // ------------------------------------------------------------------ requests

  async function loadRequests() {
    const page = await api("requests");
    for (const entry of page.requests.slice(-MAX_REQUESTS)) addRequest(entry);
    updateRequestCount(page.dropped);
  }

  function keyOf(entry) {
    return `${entry.request_id}|${entry.received_at}`;
  }

  function addRequest(entry) {
    const key = keyOf(entry);
    const known = state.byKey.get(key);
    if (known) {
      if (entry.answer && !known.entry.answer) { // the stream's copy carries the answer
        known.entry = entry;
        fillRow(known);
        if (!known.detail.hidden) fillDetail(known);
      }
      return;
    }
    const item = buildItem(key, entry);
    let at = 0; // newest first; a live request is almost always the newest
    while (at < state.requests.length && state.requests[at].entry.received_at > entry.received_at) at++;
    const before = state.requests[at];
    state.requests.splice(at, 0, item);
    state.byKey.set(key, item);
    $("request-list").insertBefore(item.el, before ? before.el : null);
    while (state.requests.length > MAX_REQUESTS) {
      const gone = state.requests.pop();
      state.byKey.delete(gone.key);
      gone.el.remove();
    }
    item.el.hidden = !matches(item);
    $("requests-empty").hidden = state.requests.length > 0;
  }

  function clearRequests() {
    state.requests = [];
    state.byKey.clear();
    $("request-list").replaceChildren();
    $("requests-empty").hidden = false;
    updateRequestCount();
  }

  function updateRequestCount(dropped) {
    const shown = state.requests.filter((item) => !item.el.hidden).length;
    const total = state.requests.length;
    let text = shown === total ? `(${total})` : `(${shown} of ${total})`;
    if (dropped) text += ` · ${dropped} dropped by the journal`;
    $("request-count").textContent = text;
  }

  function statusClass(status) {
    return status === null || status === undefined ? "sx" : `s${String(status)[0]}`;
  }

  function buildItem(key, entry) {
    const id = `request-${++state.seq}`;
    const row = h("button", { type: "button", class: "request-row", "aria-expanded": "false", "aria-controls": id });
    const detail = h("div", { id, class: "request-detail", hidden: true, role: "region", "aria-label": "Request details" });
    const el = h("li", { class: "request" }, row, detail);
    const item = { key, entry, el, row, detail, haystack: "" };
    row.addEventListener("click", () => toggle(item));
    fillRow(item);
    return item;
  }

  function failureText(entry) {
    const answer = entry.answer;
    if (!answer || !(answer.status >= 400)) return "";
    const field = answer.field ? `${answer.field}: ` : "";
    return `${field}${answer.message || ""}`;
  }

  function fillRow(item) {
    const entry = item.entry;
    const query = entry.query && Object.keys(entry.query).length
      ? "?" + Object.entries(entry.query).map(([k, v]) => `${k}=${v}`).join("&") : "";
    const status = entry.status === null ? (entry.fault || "—") : String(entry.status);
    const answered = entry.scenario ? `${entry.scenario} · ${entry.rule || ""}` : "";
    const failure = failureText(entry);
    item.row.replaceChildren(
      h("span", { class: "time", text: time(entry.received_at) }),
      h("span", { class: "method", text: entry.method }),
      h("span", { class: "path", text: entry.path + query, title: entry.path + query }),
      h("span", { class: `status ${statusClass(entry.status)}`, text: status }),
      h("span", { class: "operation", text: entry.operation || "—", title: entry.operation || "no operation" }),
      h("span", { class: "answered", text: answered, title: answered }),
      h("span", { class: "failure", text: failure, title: failure }),
    );
    item.row.setAttribute("aria-label",
      `${entry.method} ${entry.path} answered ${status}${answered ? ` by ${answered}` : ""}${failure ? `: ${failure}` : ""}`);
    item.el.dataset.status = entry.status === null ? "" : String(entry.status);
    item.el.dataset.path = entry.path;
    item.el.dataset.field = (entry.answer && entry.answer.field) || "";
    item.el.dataset.requestId = entry.request_id || "";
    item.haystack = [entry.method, entry.path, query, entry.status, entry.operation, entry.scenario, entry.rule,
      entry.fault, entry.request_id, failure, JSON.stringify(entry.body)].join(" ").toLowerCase();
  }

  function toggle(item) {
    const open = item.detail.hidden;
    if (open) fillDetail(item);
    item.detail.hidden = !open;
    item.row.setAttribute("aria-expanded", String(open));
  }

  function pairs(object) {
    const entries = Object.entries(object || {});
    if (!entries.length) return h("p", { class: "muted", text: "none" });
    return h("dl", { class: "kv" }, entries.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })]));
  }

  function bodyOf(value) {
    if (value === null || value === undefined) return h("p", { class: "muted", text: "no body" });
    return h("pre", { text: typeof value === "string" ? value : json(value) });
  }

  function fillDetail(item) {
    const entry = item.entry;
    const answer = entry.answer;
    const request = h("div", {},
      h("h4", { text: "Request" }),
      pairs({ "request id": entry.request_id, received: entry.received_at, "duration ms": entry.duration_ms,
        operation: entry.operation || "none", scenario: entry.scenario || "none", rule: entry.rule || "none",
        fault: entry.fault || "none" }),
      h("h4", { text: "Query" }), pairs(entry.query),
      h("h4", { text: "Headers" }), pairs(entry.headers),
      h("h4", { text: "Body" }), bodyOf(entry.body),
    );
    const answered = answer
      ? h("div", {},
        h("h4", { text: `Answer: ${answer.status === null ? "connection dropped" : answer.status}` }),
        answer.status >= 400 ? pairs({ field: answer.field || "none", message: answer.message || "none" }) : null,
        h("h4", { text: "Headers" }), pairs(answer.headers),
        h("h4", { text: "Body" }), bodyOf(answer.body))
      : h("div", {},
        h("h4", { text: `Answer: ${entry.status === null ? "connection dropped" : entry.status}` }),
        h("p", { class: "muted", text: "The answer was given before this page was watching: the journal keeps requests, the page keeps the answers it saw." }));
    item.detail.replaceChildren(request, answered);
  }

  function matches(item) {
    const path = $("filter-path").value.trim().toLowerCase();
    const status = $("filter-status").value.trim().toLowerCase();
    const text = $("filter-text").value.trim().toLowerCase();
    const entry = item.entry;
    if (path && !entry.path.toLowerCase().includes(path)) return false;
    if (status) {
      const shown = entry.status === null ? "" : String(entry.status);
      const pattern = status.replace(/x/g, "");
      if (!shown.startsWith(pattern)) return false;
    }
    if (text && !item.haystack.includes(text)) return false;
    return true;
  }

  function applyFilters() {
    for (const item of state.requests) item.el.hidden = !matches(item);
    updateRequestCount();
  }

  // Up and down move between requests; Home and End go to the newest and oldest shown.
  function onListKey(event) {
    const rows = state.requests.filter((item) => !item.el.hidden).map((item) => item.row);
    const at = rows.indexOf(document.activeElement);
    if (at < 0) return;
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: rows.length - 1 }[event.key];
    if (to === undefined || to < 0 || to >= rows.length) return;
    event.preventDefault();
    rows[to].focus();
  }

  // ------------------------------------------------------------------ scenarios

  async function loadScenarioState() {
    state.scenario = await api("scenario");
    renderScenarioState();
  }

  async function loadScenarios() {
    state.scenarios = (await api("scenarios")).scenarios;
    renderScenarioOptions();
    renderScenarioTable();
  }

  async function loadUses() {
    state.uses = (await api("scenarios/uses")).uses;
    renderScenarioTable();
  }

  function renderScenarioState() {
    const s = state.scenario || {};
    $("active-scenario").textContent = s.active || "none";
    if (s.active && document.activeElement !== $("select-name")) $("select-name").value = s.active;
    $("default-scenario").textContent = s.default ? `(start-up: ${s.default})` : "";
    const list = $("bindings");
    list.replaceChildren(...(s.bindings || []).map((binding) => {
      const kind = "api_key" in binding ? "API key" : "token";
      const print = binding.api_key || binding.token;
      return h("li", {}, h("strong", { text: binding.name }), ` bound to the ${kind} `, h("code", { text: print }));
    }));
    renderScenarioTable();
  }

  function renderScenarioOptions() {
    for (const id of ["select-name", "bind-name"]) {
      const select = $(id);
      const chosen = select.value;
      select.replaceChildren(...state.scenarios.map((s) => h("option", { value: s.name, text: s.name })));
      if (state.scenarios.some((s) => s.name === chosen)) select.value = chosen;
    }
    const active = state.scenario && state.scenario.active;
    if (active && state.scenarios.some((s) => s.name === active)) $("select-name").value = active;
  }

  function renderScenarioTable() {
    const active = state.scenario && state.scenario.active;
    const rows = state.scenarios.map((s) => {
      const uses = state.uses.filter((u) => u.scenario === s.name);
      const used = uses.reduce((sum, u) => sum + u.used, 0);
      const detail = uses.map((u) => `${u.client || "server-wide"}: ` +
        u.rules.map((r) => `${r.rule} ${r.used}${r.times ? "/" + r.times : ""}`).join(", ")).join("; ");
      return h("tr", { "data-scenario": s.name, class: s.name === active ? "active" : null },
        h("td", {}, h("strong", { text: s.name }), s.name === active ? h("span", { class: "muted", text: " (selected)" }) : null),
        h("td", { text: s.description || "" }),
        h("td", { text: String(s.rules) }),
        h("td", { text: String(used), title: detail || "not used yet" }));
    });
    $("scenario-table").tBodies[0].replaceChildren(...rows);
  }

  async function selectScenario(name) {
    state.scenario = await api("scenario", { method: "PUT", body: { name } });
    renderScenarioState();
    flash(name ? `Scenario ${name} answers every client now` : "No scenario is selected server-wide", true);
  }

  async function bind(name) {
    const kind = $("bind-kind").value;
    const credential = $("bind-credential").value;
    if (!credential) { flash("Enter the API key or token to bind"); return; }
    state.scenario = await api("scenario", { method: "PUT", body: { name, [kind]: credential } });
    renderScenarioState();
    $("bind-credential").value = "";
    flash(name ? `Scenario ${name} answers that client now` : "That client is unbound", true);
  }

  // ------------------------------------------------------------------ webhooks and deliveries

  async function loadWebhooks() {
    state.webhooks = await api("webhooks");
    renderWebhooks();
    renderEventTypes();
    renderAttempts();
  }

  async function loadDeliveries() {
    const page = await api("deliveries");
    for (const attempt of page.deliveries.slice(-MAX_ATTEMPTS)) addAttempt(attempt, false);
    renderAttempts();
  }

  function attemptKey(a) {
    return `${a.webhook_id}|${a.event_id}|${a.attempt}|${a.at}|${a.status}|${a.latency_ms}`;
  }

  function addAttempt(attempt, render) {
    const key = attemptKey(attempt);
    if (state.attemptKeys.has(key)) return;
    state.attemptKeys.add(key);
    state.attempts.unshift(attempt);
    state.attempts.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
    while (state.attempts.length > MAX_ATTEMPTS) state.attemptKeys.delete(attemptKey(state.attempts.pop()));
    if (render) renderAttempts();
  }

  function patchLine(line) {
    const hooks = state.webhooks && state.webhooks.webhooks;
    if (!hooks) return;
    const hook = hooks.find((w) => w.id === line.webhook_id && w.tenant === line.tenant);
    if (!hook) return;
    Object.assign(hook, { penalty_box: line.penalty_box, queued: line.queued, dropped: line.dropped,
      delivering: line.delivering });
    renderWebhooks();
  }

  function renderWebhooks() {
    const hooks = (state.webhooks && state.webhooks.webhooks) || [];
    const box = $("webhook-list");
    if (!hooks.length) {
      box.replaceChildren(h("p", { class: "muted", text: "No webhooks yet: create one through the contract and it shows here." }));
      return;
    }
    const tenants = new Map();
    for (const hook of hooks) {
      if (!tenants.has(hook.tenant)) tenants.set(hook.tenant, []);
      tenants.get(hook.tenant).push(hook);
    }
    box.replaceChildren(...[...tenants].map(([tenant, list]) => h("div", { class: "tenant" },
      h("h3", { text: `tenant ${tenant}` }),
      list.map(renderWebhook))));
  }

  function renderWebhook(hook) {
    const held = hook.penalty_box;
    const name = hook.webhook && (hook.webhook.name || hook.webhook.reference);
    return h("div", { class: held ? "webhook boxed" : "webhook", "data-webhook-id": hook.id },
      h("div", { class: "line1" },
        h("strong", { class: "mono", text: hook.id }),
        name ? h("span", { text: name }) : null,
        h("span", { class: "url mono", text: hook.url }),
        h("span", { class: "muted", text: hook.active ? "active" : "inactive" }),
        hook.queued ? h("span", { text: `${hook.queued} queued` }) : null,
        hook.dropped ? h("span", { class: "error", text: `${hook.dropped} dropped` }) : null),
      held
        ? h("div", {},
          h("p", { class: "box-state",
            text: `In the penalty box since ${held.since} after ${held.retry_count} tries (${held.cause}); ` +
              `holding ${held.event_type} ${held.event_id}; next retry ${held.retry_at || "not planned"}.` }),
          h("button", { type: "button", class: "release", "data-webhook-id": hook.id,
            onclick: guarded(() => release(hook)) }, "Release held event"))
        : h("p", { class: "muted", text: hook.delivering ? "delivering…" : "not in the penalty box" }));
  }

  async function release(hook) {
    const path = `deliveries/${encodeURIComponent(hook.id)}/release?tenant=${encodeURIComponent(hook.tenant)}`;
    const result = await api(path, { method: "POST" });
    const said = Object.entries(result).filter(([k]) => k !== "webhook_id" && k !== "tenant")
      .map(([k, v]) => `${k}: ${v}`).join(", ");
    flash(`Released ${hook.id}: ${said}`, true);
    await loadWebhooks();
  }

  function renderEventTypes() {
    const select = $("emit-type");
    const types = (state.webhooks && state.webhooks.event_types) || [];
    if (select.options.length === types.length && [...select.options].every((o, i) => o.value === types[i])) return;
    const chosen = select.value;
    select.replaceChildren(...types.map((t) => h("option", { value: t, text: t })));
    if (types.includes(chosen)) select.value = chosen;
    $("emit-platform").hidden = !(state.webhooks && state.webhooks.tenancy_header);
  }

  async function emit() {
    const type = $("emit-type").value;
    const raw = $("emit-data").value.trim();
    const body = { type };
    if (raw) {
      try { body.data = JSON.parse(raw); } catch (_) { flash("The event data must be a JSON object"); return; }
    }
    const extra = {};
    const platform = $("emit-platform").value.trim();
    const header = state.webhooks && state.webhooks.tenancy_header;
    if (platform && header) extra[header] = platform;
    const result = await api("events", { method: "POST", body, headers: extra });
    $("emit-result").textContent = `Event ${result.event_id} (${result.type}) goes to ${result.webhooks.length} webhook(s)`;
  }

  function renderAttempts() {
    const signing = state.webhooks && state.webhooks.signing;
    const rows = state.attempts.map((a) => {
      const ok = a.status !== null && a.status >= 200 && a.status < 300;
      const result = a.refused ? `refused: ${a.error}` : a.status !== null ? `HTTP ${a.status}` : (a.error || "no answer");
      let shown;
      if (a.headers) shown = pairs(a.headers);
      else if (signing) shown = h("span", { class: "muted", text: `signed: ${signing.signature_header}, ${signing.timestamp_header}` });
      else shown = h("span", { class: "muted", text: "—" });
      return h("tr", { "data-webhook-id": a.webhook_id, "data-status": a.status === null ? "" : String(a.status) },
        h("td", { text: time(a.at) }),
        h("td", { class: "mono", text: a.webhook_id }),
        h("td", { title: a.event_id, text: a.event_type }),
        h("td", { text: String(a.attempt) }),
        h("td", { class: ok ? "s2" : "s5", text: result, title: a.error || "" }),
        h("td", { text: String(a.latency_ms) }),
        h("td", {}, shown));
    });
    $("attempts").tBodies[0].replaceChildren(...rows);
    $("attempt-count").textContent = `(${state.attempts.length})`;
  }

  // ------------------------------------------------------------------ contract

  async function loadContract() {
    const contract = await api("contract");
    const rows = contract.operations.map((op) => {
      const b = op.behaviour;
      const what = b ? [b.kind, b.action || (b.kind !== "data" ? b.collection : null)].filter(Boolean).join(" · ")
        : "answer from the schema";
      return h("tr", {},
        h("td", { class: "mono", text: op.method }),
        h("td", { class: "mono", text: op.path }),
        h("td", { text: op.operation, title: op.summary || "" }),
        h("td", { text: what, title: op.behaviour_source ? `from ${op.behaviour_source}` : "" }),
        h("td", { text: op.statuses.join(" ") }));
    });
    $("operations").tBodies[0].replaceChildren(...rows);
    $("operation-count").textContent = `(${rows.length} operations)`;
  }

  // ------------------------------------------------------------------ the admin token

  function storedToken() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (_) { return null; }
  }

  function storeToken(token) {
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) { /* storage may be off: the token then lasts as long as the page */ }
  }

  function lock(message) {
    state.running = false;
    state.token = null;
    storeToken(null);
    $("board").hidden = true;
    $("reset").disabled = true;
    $("unlock").hidden = false;
    $("token-error").textContent = message || "";
    setConnection("down", "locked: the admin token is needed");
    $("token").focus();
  }

  async function unlockWith(token) {
    state.token = token;
    try {
      await api("scenario");
    } catch (err) {
      state.token = null;
      if (err instanceof Unauthorised) { lock("That is not the admin token."); return; }
      throw err;
    }
    storeToken(token);
    $("token").value = "";
    open();
  }

  function open() {
    $("unlock").hidden = true;
    $("board").hidden = false;
    $("reset").disabled = false;
    setConnection("", "connecting…");
    guarded(loadContract)();
    runStream();
  }

  // ------------------------------------------------------------------ start

  function wire() {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(unlockWith)($("token").value);
    });
    for (const id of ["filter-path", "filter-status", "filter-text"]) $(id).addEventListener("input", applyFilters);
    $("request-list").addEventListener("keydown", onListKey);
    $("select-form").addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(selectScenario)($("select-name").value);
    });
    $("clear-scenario").addEventListener("click", guarded(() => selectScenario(null)));
    $("bind-form").addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(bind)($("bind-name").value);
    });
    $("unbind").addEventListener("click", guarded(() => bind(null)));
    $("emit-form").addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(emit)();
    });
    $("reset").addEventListener("click", guarded(async () => {
      await api("reset", { method: "POST" });
      flash("The mock is back at its start-up state", true);
    }));
  }

  function start() {
    wire();
    if (document.body.dataset.token === "required") {
      const token = storedToken();
      if (token) guarded(unlockWith)(token);
      else lock("");
      return;
    }
    open();
  }

  start();
})();
