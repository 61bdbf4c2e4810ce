// The vcci dashboard: a client of the public API only (see /docs). The API key lives in
// sessionStorage (this tab); every response of 401 sends the user back to sign-in.
// User data is only ever inserted as text (textContent), never as HTML.
"use strict";

const CATEGORY_NAMES = [
  "", "Purchased goods and services", "Capital goods", "Fuel- and energy-related activities",
  "Upstream transportation and distribution", "Waste generated in operations", "Business travel",
  "Employee commuting", "Upstream leased assets", "Downstream transportation and distribution",
  "Processing of sold products", "Use of sold products", "End-of-life treatment of sold products",
  "Downstream leased assets", "Franchises", "Investments",
];
const COLORS = ["#2b6cb0", "#38a169", "#d69e2e", "#e53e3e", "#805ad5", "#319795", "#dd6b20", "#b83280",
  "#718096", "#2c5282", "#276749", "#975a16", "#9b2c2c", "#553c9a", "#234e52"];
const METHOD_NAMES = { supplier_specific: "Supplier-specific", average_data: "Average-data", hybrid: "Hybrid", spend_based: "Spend-based" };

const $ = (id) => document.getElementById(id);
const state = { key: sessionStorage.getItem("vcci-key"), me: null, charts: {},
  supCursors: [null], supPage: 0, txCursors: [null], txPage: 0, factorCursors: [null], factorPage: 0,
  auditCursors: [null], auditPage: 0, clCursors: [null], clPage: 0 };

class Unauthorized extends Error {}

function say(text, bad) {
  const s = $("status");
  s.textContent = text || "";
  s.classList.toggle("bad", !!bad);
}

async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + state.key }, opts.headers || {});
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  if (res.status === 401) throw new Unauthorized();
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const e = body && body.error;
    throw new Error(e ? e.message + (e.details && e.details.length ? " (" + e.details.map((d) => d.message).join("; ") + ")" : "") : "HTTP " + res.status);
  }
  return body;
}

function fail(e) {
  if (e instanceof Unauthorized) {
    signOut("Your API key is no longer accepted (it was revoked or has expired). Sign in again.");
  } else {
    say(e.message, true);
  }
}

const fmt = (n, d = 0) => Number(n).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const tonnes = (kg) => kg / 1000;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    if (c instanceof Node) { const td = document.createElement("td"); td.appendChild(c); tr.appendChild(td); }
    else if (typeof c === "object" && c !== null) tr.appendChild(el("td", c.text, c.cls));
    else tr.appendChild(el("td", c));
  }
  return tr;
}

function chart(id, config) {
  if (state.charts[id]) state.charts[id].destroy();
  state.charts[id] = new Chart($(id), config);
  return state.charts[id];
}

// ---- sign-in and navigation ----

function signOut(message) {
  liveStop();
  sessionStorage.removeItem("vcci-key");
  state.key = null;
  state.me = null;
  $("nav").hidden = true;
  $("who").hidden = true;
  $("signout").hidden = true;
  $("signin-error").textContent = message || "";
  say("");
  if (location.hash !== "#/signin") location.hash = "#/signin";
  else show("signin");
}

async function signIn(key) {
  state.key = key;
  try {
    const me = await api("/api/v1/me");
    sessionStorage.setItem("vcci-key", key);
    state.me = me;
    $("who").textContent = me.organization + " · " + me.role;
    $("nav").hidden = false;
    $("who").hidden = false;
    $("signout").hidden = false;
    $("signin-error").textContent = "";
    liveStart();
    api("/api/v1/classification/review?limit=1").then((p) => showQueueSize(p.queue)).catch(() => {});
    return true;
  } catch (e) {
    state.key = null;
    sessionStorage.removeItem("vcci-key");
    $("signin-error").textContent = e instanceof Unauthorized
      ? "That API key was not accepted. Check that you copied all of it and that it has not been revoked."
      : "Could not sign in: " + e.message;
    return false;
  }
}

function show(page) {
  for (const s of document.querySelectorAll(".page")) s.hidden = s.id !== "page-" + page;
  const out = page === "signin";
  $("nav").hidden = out;
  $("who").hidden = out;
  $("signout").hidden = out;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = "vcci — " + (page === "signin" ? "Sign in" : page[0].toUpperCase() + page.slice(1));
}

async function route() {
  const page = (location.hash.replace(/^#\//, "") || "overview").split("?")[0];
  if (!state.key) { show("signin"); $("key").focus(); return; }
  if (!state.me && !(await signIn(state.key))) { show("signin"); return; }
  const known = ["overview", "transactions", "import", "factors", "periods", "footprints", "classification", "audit"];
  const p = known.includes(page) ? page : "overview";
  show(p);
  say("");
  try {
    if (p === "overview") await loadOverview();
    if (p === "transactions") await loadTransactions(0);
    if (p === "factors" && !state.factorsLoaded) { state.factorsLoaded = true; await loadFactors(); }
    if (p === "periods") { await loadPeriods(); await loadTargets(); }
    if (p === "footprints") await loadFootprints();
    if (p === "classification") await loadClassification();
    if (p === "audit") await loadAudit(0);
  } catch (e) { fail(e); }
}

// ---- overview ----

function periodQuery() {
  const y = $("period").value;
  return y ? { date_from: y + "-01-01", date_to: y + "-12-31", year: y } : {};
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
  const s = u.toString();
  return s ? "?" + s : "";
}

async function loadOverview() {
  const p = periodQuery();
  state.supCursors = [null];
  state.supPage = 0;
  say("Loading…");
  // One round of parallel calls.
  const [summary, months, suppliers] = await Promise.all([
    api("/api/v1/emissions/summary" + qs({ date_from: p.date_from, date_to: p.date_to })),
    api("/api/v1/emissions/by-month" + qs({ year: p.year })),
    api("/api/v1/emissions/by-supplier" + qs({ date_from: p.date_from, date_to: p.date_to, limit: 10 })),
  ]);
  renderSummary(summary);
  renderMonths(months.data);
  renderSuppliers(suppliers);
  if (!p.year && $("period").options.length === 1) {
    const years = [...new Set(months.data.map((m) => m.month.slice(0, 4)))].sort();
    for (const y of years) $("period").appendChild(new Option(y, y));
  }
  say("");
}

function renderSummary(s) {
  $("kpi-total").textContent = fmt(tonnes(s.total_co2e_kg), 1);
  $("kpi-total").dataset.kg = String(s.total_co2e_kg);
  $("kpi-lines").textContent = fmt(s.transaction_count);
  $("kpi-spend").textContent = fmt(s.spend_usd);
  $("kpi-dq").textContent = s.weighted_data_quality == null ? "–" : fmt(s.weighted_data_quality, 2);
  const cats = s.by_category;
  chart("chart-category", {
    type: "bar",
    data: { labels: cats.map((c) => c.category + ". " + c.name),
      datasets: [{ label: "tCO2e", data: cats.map((c) => tonnes(c.co2e_kg)), backgroundColor: cats.map((c) => COLORS[(c.category - 1) % COLORS.length]) }] },
    options: { indexAxis: "y", maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } } },
  });
  const none = s.categories_without_data;
  $("no-data").textContent = none.length
    ? "No data (not reported): " + none.map((n) => n + ". " + CATEGORY_NAMES[n]).join(", ")
    : "Every category has data.";
  const apart = s.scope_1_2_recorded_apart || { scope_1_kg: 0, scope_2_kg: 0 };
  $("scope12-apart").textContent = apart.scope_1_kg || apart.scope_2_kg
    ? "Recorded apart, not in this total: Scope 1 " + fmt(tonnes(apart.scope_1_kg), 2) + " tCO2e, Scope 2 " +
      fmt(tonnes(apart.scope_2_kg), 2) + " tCO2e (energy and fuel inputs; their upstream emissions are in category 3)."
    : "";
  const g = s.by_gas;
  if (g) {
    const parts = [["CO2", g.co2_kg], ["CH4", g.ch4_kg], ["N2O", g.n2o_kg], ["other gases", g.other_kg],
      ["radiative forcing", g.radiative_forcing_kg], ["not split by the factor set", g.unspecified_kg]].filter(([, v]) => v);
    $("by-gas").textContent = "By gas: " + parts.map(([k, v]) => k + " " + fmt(tonnes(v), 2) + " t").join(", ") + "." +
      (s.biogenic_co2_kg ? " Biogenic CO2, outside the scopes: " + fmt(tonnes(s.biogenic_co2_kg), 2) + " t." : "");
  }
  const methods = s.by_method;
  chart("chart-method", {
    type: "doughnut",
    data: { labels: methods.map((m) => METHOD_NAMES[m.method] || m.method),
      datasets: [{ data: methods.map((m) => tonnes(m.co2e_kg)), backgroundColor: ["#2b6cb0", "#38a169", "#d69e2e"] }] },
    options: { maintainAspectRatio: false, animation: false },
  });
  const dq = s.by_data_quality;
  chart("chart-dq", {
    type: "doughnut",
    data: { labels: dq.map((d) => "Score " + d.data_quality),
      datasets: [{ data: dq.map((d) => tonnes(d.co2e_kg)), backgroundColor: ["#276749", "#38a169", "#d69e2e", "#dd6b20", "#c53030"] }] },
    options: { maintainAspectRatio: false, animation: false },
  });
}

function renderMonths(months) {
  const cats = [...new Set(months.flatMap((m) => Object.keys(m.by_category)))].map(Number).sort((a, b) => a - b);
  chart("chart-month", {
    type: "bar",
    data: { labels: months.map((m) => m.month),
      datasets: cats.map((c) => ({ label: c + ". " + CATEGORY_NAMES[c], data: months.map((m) => tonnes(m.by_category[String(c)] || 0)),
        backgroundColor: COLORS[(c - 1) % COLORS.length], stack: "all" })) },
    options: { maintainAspectRatio: false, animation: false, scales: { x: { stacked: true }, y: { stacked: true } },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } } },
  });
}

function renderSuppliers(page) {
  const body = $("suppliers-table").tBodies[0];
  body.replaceChildren();
  page.data.forEach((s, i) => body.appendChild(row([
    state.supPage * 10 + i + 1,
    s.name ? s.name + " (" + s.supplier_id + ")" : (s.supplier_id || "(no supplier)"),
    { text: fmt(tonnes(s.co2e_kg), 2), cls: "num" }, { text: fmt(s.transaction_count), cls: "num" }, { text: fmt(s.spend_usd), cls: "num" },
  ])));
  state.supCursors[state.supPage + 1] = page.page_info.end_cursor;
  $("sup-prev").disabled = state.supPage === 0;
  $("sup-next").disabled = !page.page_info.has_next_page;
}

async function supplierPage(delta) {
  const p = periodQuery();
  const next = state.supPage + delta;
  try {
    const page = await api("/api/v1/emissions/by-supplier" + qs({ date_from: p.date_from, date_to: p.date_to, limit: 10, cursor: state.supCursors[next] }));
    state.supPage = next;
    renderSuppliers(page);
  } catch (e) { fail(e); }
}

// ---- transactions ----

function txFilters() {
  return { supplier_id: $("f-supplier").value.trim(), category: $("f-category").value, date_from: $("f-from").value, date_to: $("f-to").value };
}

async function loadTransactions(delta = 0) {
  if (delta === 0) { state.txCursors = [null]; state.txPage = 0; }
  const next = state.txPage + delta;
  const page = await api("/api/v1/transactions" + qs(Object.assign(txFilters(), { limit: 25, cursor: state.txCursors[next],
    fields: "transaction_id,date,supplier_id,supplier_name,emission" })));
  state.txPage = next;
  state.txCursors[next + 1] = page.page_info.end_cursor;
  const body = $("tx-table").tBodies[0];
  body.replaceChildren();
  for (const t of page.data) {
    const b = el("button", t.transaction_id, "link");
    b.type = "button";
    b.addEventListener("click", () => showLine(t.transaction_id, b.closest("tr")));
    body.appendChild(row([t.date, b, t.supplier_name || t.supplier_id || "", t.emission.category + ". " + t.emission.category_name,
      METHOD_NAMES[t.emission.method] || t.emission.method, { text: fmt(t.emission.co2e_kg, 2), cls: "num" }]));
  }
  if (!page.data.length) body.appendChild(row(["No lines match these filters.", "", "", "", "", ""]));
  $("tx-page").textContent = "Page " + (next + 1);
  $("tx-prev").disabled = next === 0;
  $("tx-next").disabled = !page.page_info.has_next_page;
}

function dl(pairs) {
  const d = document.createElement("dl");
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    d.appendChild(el("dt", k));
    d.appendChild(el("dd", v));
  }
  return d;
}

async function showLine(id, tr) {
  try {
    const t = await api("/api/v1/transactions/" + encodeURIComponent(id));
    for (const r of $("tx-table").tBodies[0].rows) r.classList.remove("selected");
    if (tr) tr.classList.add("selected");
    const e = t.emission;
    const box = $("tx-detail");
    box.replaceChildren(el("h2", "Line " + t.transaction_id));
    const supplier = t.supplier_as_named ? t.supplier_id + " (named " + t.supplier_as_named + ")" : t.supplier_name || t.supplier_id;
    box.appendChild(dl([["Date", t.date], ["Supplier", supplier], ["Description", t.description],
      ["Amount", t.amount != null ? fmt(t.amount, 2) + " " + (t.currency || "USD") : null],
      ["Quantity", t.quantity != null ? t.quantity + " " + (t.unit || "") : null], ["NAICS", t.naics_code], ["Activity", t.activity_id],
      ["Ledger account", [t.gl_account, t.gl_account_name].filter(Boolean).join(" ") || null]]));
    box.appendChild(el("h2", "Result"));
    box.appendChild(dl([["Emissions", fmt(e.co2e_kg, 3) + " kg CO2e"], ["Category", e.category + ". " + e.category_name + " (from " + e.category_source + ")"],
      ["Method", METHOD_NAMES[e.method] || e.method], ["Data quality", e.data_quality + " (1 best, 5 worst)"]]));
    const q = e.data_quality_indicators;
    if (q) {
      box.appendChild(dl([["Technological", q.technological], ["Temporal", q.temporal], ["Geographical", q.geographical],
        ["Completeness", q.completeness], ["Reliability", q.reliability]].map(([k, v]) => [k, String(v)])));
    }
    const k = e.classification;
    if (k) {
      const sources = { rule: "a rule", supplier_history: "the supplier's history", organization_model: "the organization's own lines",
        builtin_model: "the built-in model", review: "a reviewer" };
      box.appendChild(el("h2", "Classification" + (k.needs_review ? " (needs review)" : "")));
      box.appendChild(el("p", "The line had no NAICS code, nor its supplier: " + (sources[k.source] || k.source) + " gave it one.", "muted"));
      const ev = k.evidence || {};
      const why = ev.kind === "rule" ? "rule " + ev.rule_id + ": " + ev.rule_kind.replaceAll("_", " ") + " '" + ev.pattern + "'"
        : ev.kind === "supplier_history" ? ev.lines + " learned lines of " + ev.supplier + ", " + fmt(ev.share * 100, 0) + " % with this code"
        : ev.kind === "review" ? ev.verdict + " by " + ev.reviewed_by + " on " + ev.reviewed_at.slice(0, 10) + (ev.previous ? " (the classifier had said " + ev.previous.naics + ")" : "")
        : (ev.terms || []).map((x) => x.term + " (" + x.field.replaceAll("_", " ") + ")").join(", ");
      box.appendChild(dl([["NAICS", k.naics], ["Category", String(k.category)], ["Capital", k.capex ? "yes" : "no"],
        ["Confidence", fmt(k.confidence, 3)], ["Why", why || null]]));
    }
    box.appendChild(el("h2", "Factor"));
    box.appendChild(dl([["Set", e.factor.set], ["Version", e.factor.version], ["Key", e.factor.key], ["Value", e.factor.value + " " + e.factor.unit],
      ["Scope", e.factor.scope]]));
    const sd = e.supplier_data;
    if (sd) {
      box.appendChild(el("h2", "Supplier data"));
      box.appendChild(dl([["Boundary", sd.boundary.replaceAll("_", " ") + (sd.boundary_stated ? "" : " (not stated: read as cradle to gate)")],
        ["Verified", sd.verified ? "yes" : "no"]]));
      const h = sd.hybrid;
      if (h) {
        box.appendChild(el("p", "Hybrid: the supplier's Scope 1+2 plus the upstream share from the EEIO factor of its NAICS code.", "muted"));
        box.appendChild(dl([["Supplier Scope 1+2", fmt(h.supplier_scope_1_2_kg, 3) + " kg"],
          ["EEIO cradle-to-gate", fmt(h.eeio_cradle_to_gate_kg, 3) + " kg = " + fmt(h.eeio_amount_usd_price_year, 2) + " USD × " + h.eeio_factor.value + " " + h.eeio_factor.unit + " (NAICS " + h.eeio_factor.key + ")"],
          ["Upstream share", fmt(h.upstream_kg, 3) + " kg (the estimate less the supplier's Scope 1+2, at least 0)"]]));
      }
    }
    if (e.scope_1_2) {
      box.appendChild(el("h2", "Scope " + e.scope_1_2.scope + " (recorded apart)"));
      box.appendChild(el("p", fmt(e.scope_1_2.co2e_kg, 3) + " kg CO2e of Scope " + e.scope_1_2.scope +
        ": an energy or fuel input. Not counted in Scope 3; its upstream emissions below are (category 3).", "muted"));
    }
    if (e.radiative_forcing) {
      box.appendChild(el("p", e.radiative_forcing.included
        ? "With radiative forcing: the RF multiplier adds " + fmt(e.radiative_forcing.uplift_kg, 3) + " kg CO2e (not CO2)."
        : "Without radiative forcing (the organization's choice).", "muted"));
    }
    if (e.upstream && e.upstream.length) {
      box.appendChild(el("h2", e.scope_1_2 ? "Upstream (category 3)" : "Added upstream (well-to-tank)"));
      const kinds = { wtt: "Well-to-tank", td_losses: "T&D losses", wtt_td_losses: "WTT of T&D losses" };
      box.appendChild(dl(e.upstream.map((u) => [kinds[u.kind] || u.kind,
        fmt(u.co2e_kg, 3) + " kg = " + u.factor.value + " " + u.factor.unit + " (" + u.factor.key + ")"])));
    }
    if (e.gases) {
      const g = e.gases;
      box.appendChild(el("h2", "By gas (kg CO2e)"));
      box.appendChild(dl([["CO2", g.co2_kg], ["CH4", g.ch4_kg], ["N2O", g.n2o_kg], ["Other gases", g.other_kg],
        ["Radiative forcing (not a gas)", g.radiative_forcing_kg], ["Not split by the factor set", g.unspecified_kg]]
        .filter(([, v]) => v).map(([k, v]) => [k, fmt(v, 3)])));
    }
    if (e.biogenic_co2_kg != null) {
      box.appendChild(el("p", "Biogenic CO2, outside the scopes (not in the total): " + fmt(e.biogenic_co2_kg, 3) + " kg.", "muted"));
    }
    const c = e.conversions || {};
    if (c.spend) {
      box.appendChild(el("h2", "Spend conversion"));
      box.appendChild(dl([["Amount", fmt(c.spend.amount, 2) + " " + c.spend.currency],
        ["FX rate", c.spend.fx_rate + " " + c.spend.currency + "/USD (" + c.spend.fx_year + ")"], ["In USD", fmt(c.spend.amount_usd, 2)],
        ["CPI ratio", c.spend.cpi_ratio.toFixed(6) + " (" + c.spend.cpi_from_year + " → " + c.spend.cpi_to_year + ")"],
        ["In factor-year USD", fmt(c.spend.amount_usd_price_year, 2)], ["Price basis", c.spend.price_basis]]));
    }
    if (c.unit) {
      box.appendChild(el("h2", "Unit conversion"));
      box.appendChild(dl([["Quantity", c.unit.quantity + " " + c.unit.from], ["Factor", c.unit.factor], ["Converted", c.unit.converted + " " + c.unit.to]]));
    }
    box.appendChild(el("h2", "Fallbacks"));
    if (e.fallbacks.length) {
      const ul = document.createElement("ul");
      for (const f of e.fallbacks) ul.appendChild(el("li", f.code + ": " + f.message));
      box.appendChild(ul);
    } else box.appendChild(el("p", "None: the line's own data was used.", "muted"));
  } catch (err) { fail(err); }
}

// ---- import ----

async function startImport(file) {
  const job = $("import-job");
  job.hidden = false;
  $("job-result").hidden = true;
  $("job-status").textContent = "uploading";
  $("job-progress").value = 0;
  try {
    const r = await api("/api/v1/imports", { method: "POST", headers: { "Content-Type": "text/csv" }, body: file });
    $("job-id").textContent = r.job_id;
    // Progress comes as live `job` events; the finished job (with its rejected lines) is read once.
    await followJob(r.job_id, (j) => {
      $("job-status").textContent = j.status;
      const p = j.progress || {};
      if (p.bytes_total) $("job-progress").value = Math.round(100 * (p.bytes_read || 0) / p.bytes_total);
      $("job-processed").textContent = fmt(p.processed || 0) + " lines processed";
    });
    const j = await api(r.status_url);
    $("job-status").textContent = j.status;
    showJob(j);
  } catch (e) { fail(e); }
}

function showJob(j) {
  $("job-progress").value = 100;
  $("job-result").hidden = false;
  const res = j.result || {};
  $("job-accepted").textContent = fmt(res.accepted || 0);
  $("job-rejected").textContent = fmt(res.rejected || 0);
  const body = $("job-errors").tBodies[0];
  body.replaceChildren();
  for (const e of j.errors || []) body.appendChild(row([e.line ?? "", e.column ?? "", e.message]));
  say(j.status === "succeeded" ? "Import finished." : "Import failed: " + ((j.errors || [])[0] || {}).message, j.status !== "succeeded");
}

// ---- factors ----

async function loadFactors(delta = 0) {
  if (delta === 0) { state.factorCursors = [null]; state.factorPage = 0; }
  const next = state.factorPage + delta;
  const page = await api("/api/v1/factors" + qs({ q: $("factor-q").value.trim(), set: $("factor-set").value, limit: 25, cursor: state.factorCursors[next] }));
  state.factorPage = next;
  state.factorCursors[next + 1] = page.page_info.end_cursor;
  const body = $("factor-table").tBodies[0];
  body.replaceChildren();
  for (const f of page.data) body.appendChild(row([f.set + " " + f.version, f.key, f.name, f.scope || "", f.region, f.year, f.unit, { text: f.value, cls: "num" }]));
  if (!page.data.length) body.appendChild(row(["No factor matches.", "", "", "", "", "", "", ""]));
  $("factor-prev").disabled = next === 0;
  $("factor-next").disabled = !page.page_info.has_next_page;
}

// ---- periods ----

async function loadPeriods() {
  const { periods } = await api("/api/v1/periods");
  const body = $("period-table").tBodies[0];
  body.replaceChildren();
  for (const p of periods) {
    const latest = p.versions[p.versions.length - 1] || {};
    const versions = document.createElement("span");
    for (const v of p.versions) {
      const b = el("button", "v" + v.version, "link");
      b.type = "button";
      b.setAttribute("aria-label", "Show version " + v.version + " of " + p.year);
      b.addEventListener("click", () => showVersion(p.year, v.version).catch(fail));
      versions.appendChild(b);
      versions.appendChild(document.createTextNode(" "));
    }
    body.appendChild(row([String(p.year), p.status, { text: String(p.version), cls: "num" },
      { text: fmt(tonnes(latest.total_co2e_kg || 0), 3), cls: "num" }, { text: fmt(latest.transaction_count || 0), cls: "num" },
      p.closed_at + " by " + p.closed_by, p.reopen_reason ? p.reopened_at + ": " + p.reopen_reason : "", versions]));
  }
  if (!periods.length) body.appendChild(row(["No year has been closed.", "", "", "", "", "", "", ""]));
  const admin = state.me && state.me.role === "admin";
  $("close-form").hidden = !admin;
  $("reopen-form").hidden = !admin;
}

async function showVersion(year, version) {
  const v = await api("/api/v1/periods/" + year + "/versions/" + version);
  const box = $("version-detail");
  box.hidden = false;
  box.replaceChildren(el("h2", year + " version " + v.version + " (" + v.reason + ", " + v.created_at + " by " + v.created_by + ")"));
  box.appendChild(el("p", fmt(tonnes(v.total_co2e_kg), 3) + " tCO2e from " + fmt(v.transaction_count) + " lines, as disclosed."));
  const t = document.createElement("table");
  t.id = "version-table";
  const head = t.createTHead().insertRow();
  for (const [h, cls] of [["Category", ""], ["tCO2e", "num"], ["Share", "num"]]) {
    const th = el("th", h, cls);
    th.scope = "col";
    head.appendChild(th);
  }
  for (const c of v.inventory.categories.filter((c) => c.co2e_kg !== null)) {
    t.appendChild(row([c.category + ". " + c.name, { text: fmt(tonnes(c.co2e_kg), 3), cls: "num" }, { text: (c.share * 100).toFixed(1) + " %", cls: "num" }]));
  }
  box.appendChild(t);
}

async function loadCompare(year, denominator) {
  const c = await api("/api/v1/emissions/compare" + qs({ year, denominator }));
  $("cmp-y").textContent = String(c.year);
  $("cmp-p").textContent = String(c.previous_year);
  $("cmp-b").textContent = c.base_year ? "Base " + c.base_year : "No base year";
  $("compare-sources").textContent = "Figures: " + Object.entries(c.sources).map(([y, s]) => y + " " + s).join(", ") + " (tCO2e).";
  const t3 = (kg) => kg === null || kg === undefined ? "" : fmt(tonnes(kg), 3);
  const pc = (p) => p === null || p === undefined ? "" : (p > 0 ? "+" : "") + p.toFixed(1) + " %";
  const body = $("compare-table").tBodies[0];
  body.replaceChildren();
  for (const r of c.categories.concat([c.total])) {
    if (r.year_co2e_kg === null && r.previous_year_co2e_kg === null && r.base_year_co2e_kg === null) continue;
    body.appendChild(row([r.category ? r.category + ". " + r.name : r.name, { text: t3(r.year_co2e_kg), cls: "num" },
      { text: t3(r.previous_year_co2e_kg), cls: "num" }, { text: t3(r.base_year_co2e_kg), cls: "num" },
      { text: pc(r.change_vs_previous_pct), cls: "num" }, { text: pc(r.change_vs_base_pct), cls: "num" }]));
  }
  const i = c.intensity;
  $("compare-intensity").textContent = i ? "kg CO2e per " + (i.unit || "unit") + " of " + i.denominator + ": " +
    [[c.year, i.year_kg_per_unit], [c.previous_year, i.previous_year_kg_per_unit], [c.base_year, i.base_year_kg_per_unit]]
      .filter(([y]) => y).map(([y, v]) => y + " " + (v === null ? "no value" : fmt(v, 3))).join(", ") : "";
}

function restateBody() {
  const b = {};
  if ($("restate-epa").value) b.epa_version = $("restate-epa").value;
  if ($("restate-rf").value) b.flights_radiative_forcing = $("restate-rf").value === "true";
  return b;
}

async function previewRestatement() {
  const p = await api("/api/v1/restatements/preview", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(restateBody()) });
  const box = $("restate-result");
  box.hidden = false;
  box.replaceChildren(el("p", (p.cause || "No change of settings") + " · significance threshold " + (p.significance_threshold * 100) + " %", "muted"));
  if (!p.years.length) box.appendChild(el("p", "No closed period: nothing disclosed would change."));
  const t3 = (kg) => kg === null || kg === undefined ? "" : fmt(tonnes(kg), 3);
  for (const y of p.years) {
    box.appendChild(el("h3", y.year + " (version " + y.version + "): " + fmt(y.lines_affected) + " lines affected, " + (y.significant ? "significant" : "below the threshold")));
    const t = document.createElement("table");
    t.className = "restate-table";
    const head = t.createTHead().insertRow();
    for (const [h, cls] of [["Category", ""], ["Disclosed tCO2e", "num"], ["Restated tCO2e", "num"], ["Change", "num"], ["%", "num"]]) {
      const th = el("th", h, cls);
      th.scope = "col";
      head.appendChild(th);
    }
    for (const r of y.categories.concat([y.total])) {
      t.appendChild(row([r.category ? r.category + ". " + r.name : r.name, { text: t3(r.before_co2e_kg), cls: "num" }, { text: t3(r.after_co2e_kg), cls: "num" },
        { text: t3(r.change_kg), cls: "num" }, { text: r.change_pct === null ? "" : r.change_pct.toFixed(2) + " %", cls: "num" }]));
    }
    box.appendChild(t);
  }
}

async function loadTargets() {
  const { targets } = await api("/api/v1/targets");
  const body = $("target-table").tBodies[0];
  body.replaceChildren();
  for (const t of targets) {
    const seen = t.years.filter((y) => y.co2e_kg !== null);
    const last = seen[seen.length - 1];
    body.appendChild(row([t.name, t.categories.length ? t.categories.join(", ") : "All",
      t.base_year + " → " + t.target_year, { text: t.reduction_pct + " %", cls: "num" },
      last ? String(last.year) : "No data", { text: last ? fmt(tonnes(last.co2e_kg), 3) : "", cls: "num" },
      { text: last ? fmt(tonnes(last.path_co2e_kg), 3) : "", cls: "num" },
      last ? (last.on_track ? "Yes" : "No, above the path") : ""]));
  }
  if (!targets.length) body.appendChild(row(["No target recorded.", "", "", "", "", "", "", ""]));
}

// ---- product footprints (PACT) ----

const pct = (x) => x === null || x === undefined ? "—" : fmt(x * 100, 1) + " %";

async function loadFootprints() {
  const [cov, conns, received, published, requests] = await Promise.all([
    api("/api/v1/pact/coverage"), api("/api/v1/pact/connections"),
    api("/api/v1/footprints?limit=100"), api("/api/v1/pact/published?limit=100"), api("/api/v1/pact/requests")]);
  let rq = $("fp-requests").tBodies[0];
  rq.replaceChildren();
  for (const r of requests.requests) {
    const a = r.answer || {};
    const answer = a.error ? a.error.code + ": " + a.error.message : a.reason ? a.reason
      : a.received ? fmt(a.received.length) + " footprints received" : a.pf_ids ? fmt(a.pf_ids.length) + " footprints sent" : "";
    rq.appendChild(row([r.id, r.direction, r.connection_id || r.client_id || "", ((r.criteria || {}).productId || []).join(" "),
      { text: r.status, cls: /failed/.test(r.status) ? "bad" : "" }, answer, r.updated_at]));
  }
  $("fp-coverage").textContent = fmt(cov.lines_from_footprints) + " of " + fmt(cov.lines_naming_product) +
    " lines naming a product are calculated from a supplier's footprint (" + pct(cov.share_of_product_lines) +
    "); " + pct(cov.share_of_spend) + " of spend, " + fmt(tonnes(cov.co2e_kg_from_footprints), 2) + " tCO2e.";
  let body = $("fp-coverage-table").tBodies[0];
  body.replaceChildren();
  for (const s of cov.suppliers) {
    body.appendChild(row([s.supplier_id, { text: fmt(s.lines_naming_product), cls: "num" },
      { text: fmt(s.lines_from_footprints), cls: "num" }, { text: fmt(tonnes(s.co2e_kg_from_footprints), 2), cls: "num" }]));
  }
  body = $("fp-connections").tBodies[0];
  body.replaceChildren();
  const canSync = state.me && state.me.role !== "viewer";
  for (const c of conns.connections) {
    const last = c.last_sync || {};
    const rep = last.report || {};
    const result = last.status === "failed" ? last.reason
      : last.status ? fmt(rep.footprints || 0) + " footprints, " + fmt(rep.received || 0) + " new, " + fmt(rep.rejected_count || 0) + " rejected" : "never synced";
    const b = el("button", "Sync now");
    b.type = "button";
    b.disabled = !canSync;
    b.addEventListener("click", () => syncConnection(c.id).catch(fail));
    body.appendChild(row([c.id, c.supplier_id, c.base_url, { text: c.breaker, cls: c.breaker === "closed" ? "" : "bad" },
      (last.status || "—") + (last.at ? " · " + last.at : ""), result, b]));
  }
  body = $("fp-received").tBodies[0];
  body.replaceChildren();
  for (const f of received.data) {
    body.appendChild(row([f.id, f.supplier_id, f.status, f.in_use ? "yes" : "no", f.product_ids.join(" "),
      f.company_name, f.preceding_pf_ids.join(" "), f.superseded_by || ""]));
  }
  body = $("fp-published").tBodies[0];
  body.replaceChildren();
  for (const f of published.data) {
    body.appendChild(row([f.id, f.status, f.product_ids.join(" "), f.preceding_pf_ids.join(" "), f.published_at]));
  }
}

async function connectSupplier() {
  const out = $("fp-connect-status");
  out.textContent = "";
  const body = { supplier_id: $("c-supplier").value.trim(), base_url: $("c-url").value.trim(),
    client_id: $("c-client").value.trim(), client_secret: $("c-secret").value };
  const auth = $("c-auth").value.trim();
  if (auth) body.auth_base_url = auth;
  try {
    await api("/api/v1/pact/connections", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) {
    if (e instanceof Unauthorized) throw e;
    out.textContent = e.message;
    return;
  }
  $("fp-connect").reset();
  await loadFootprints();
}

async function syncConnection(id) {
  const job = await api("/api/v1/pact/connections/" + encodeURIComponent(id) + "/sync", { method: "POST" });
  const status = $("fp-sync-status");
  await followJob(job.job_id, (j) => {
    status.textContent = "Sync of " + id + ": " + j.status + ", " + fmt(j.progress.processed) + " footprints read";
  });
  const j = await api(job.status_url);
  status.textContent = "Sync of " + id + ": " + j.status + ", " + fmt(j.progress.processed) + " footprints read";
  if (j.status === "failed" && j.errors && j.errors[0]) status.textContent += ": " + j.errors[0].message;
  await loadFootprints();
}

// ---- classification: the review queue, coverage, rules ----

function showQueueSize(q) {
  const b = $("review-count");
  b.hidden = !q.lines;
  b.textContent = q.lines > 999 ? "999+" : String(q.lines);
  b.title = fmt(q.lines) + " lines to review";
  $("cl-queue-size").textContent = q.lines
    ? fmt(q.lines) + " lines wait for review: " + fmt(q.spend_usd) + " USD of spend, " + fmt(tonnes(q.co2e_kg), 2) + " tCO2e."
    : "Nothing waits for review.";
}

async function loadClassification() {
  await Promise.all([loadQueue(0), loadCoverage(), loadRules(), loadMatches()]);
}

// Supplier names: pairs that may be one supplier (merge or dismiss), and merges (undo).
async function loadMatches() {
  const [m, merges] = await Promise.all([api("/api/v1/supplier-matches" + qs({ limit: 50, q: $("m-q").value.trim() })), api("/api/v1/supplier-merges")]);
  const canEdit = state.me && state.me.role !== "viewer";
  let body = $("cl-matches").tBodies[0];
  body.replaceChildren();
  for (const p of m.matches) {
    const merge = el("button", "Merge");
    merge.type = "button";
    merge.disabled = !canEdit;
    merge.setAttribute("aria-label", "Merge " + p.supplier_id + " into " + p.candidate_id);
    merge.addEventListener("click", () => supplierAction("/api/v1/supplier-matches/" + p.id + "/merge",
      (r) => "Merged " + r.from + " into " + r.into + ": " + fmt(r.lines_moved) + " lines moved.").catch(fail));
    const dismiss = el("button", "Dismiss");
    dismiss.type = "button";
    dismiss.disabled = !canEdit;
    dismiss.setAttribute("aria-label", "Dismiss the pair " + p.supplier_id + " and " + p.candidate_id);
    dismiss.addEventListener("click", () => supplierAction("/api/v1/supplier-matches/" + p.id + "/dismiss", () => "Dismissed.").catch(fail));
    const actions = el("span", null, "review-actions");
    actions.append(merge, dismiss);
    body.appendChild(row([p.supplier_id, p.supplier_name, p.candidate_id, p.candidate_name, { text: fmt(p.score, 3), cls: "num" }, actions]));
  }
  if (!m.matches.length) body.appendChild(row(["No pair to review.", "", "", "", "", ""]));
  body = $("cl-merges").tBodies[0];
  body.replaceChildren();
  for (const x of merges.merges.slice(0, 20)) {
    const undo = el("button", "Undo");
    undo.type = "button";
    undo.disabled = !canEdit || !!x.unmerged_at;
    undo.setAttribute("aria-label", "Undo merge " + x.id);
    undo.addEventListener("click", () => supplierAction("/api/v1/supplier-merges/" + x.id + "/undo",
      (r) => "Undid merge " + r.merge_id + ": " + r.from + " is back with " + fmt(r.lines_moved) + " lines.").catch(fail));
    body.appendChild(row([{ text: String(x.id), cls: "num" }, x.from, x.into, { text: fmt(x.lines), cls: "num" },
      x.merged_at + " by " + x.merged_by, x.unmerged_at || "", undo]));
  }
  if (!merges.merges.length) body.appendChild(row(["No merge yet.", "", "", "", "", "", ""]));
}

async function supplierAction(path, said) {
  const r = await api(path, { method: "POST" });
  say(said(r));
  await loadMatches();
}

async function loadQueue(delta) {
  if (delta === 0) { state.clCursors = [null]; state.clPage = 0; }
  const next = state.clPage + delta;
  const page = await api("/api/v1/classification/review" + qs({ limit: 20, cursor: state.clCursors[next] }));
  state.clPage = next;
  state.clCursors[next + 1] = page.page_info.end_cursor;
  showQueueSize(page.queue);
  const body = $("cl-queue").tBodies[0];
  body.replaceChildren();
  const canReview = state.me && state.me.role !== "viewer";
  for (const it of page.data) {
    const c = it.emission.classification || {};
    const actions = el("span", null, "review-actions");
    const accept = el("button", "Accept");
    accept.type = "button";
    accept.disabled = !canReview;
    accept.addEventListener("click", () => reviewLine(it.transaction_id, null, "").catch(fail));
    const code = el("input");
    code.placeholder = "NAICS";
    code.inputMode = "numeric";
    code.maxLength = 6;
    code.setAttribute("aria-label", "Right NAICS code for " + it.transaction_id);
    code.disabled = !canReview;
    const rule = el("select");
    rule.setAttribute("aria-label", "Also make a rule for " + it.transaction_id);
    rule.appendChild(new Option("no rule", ""));
    if (it.supplier_id) rule.appendChild(new Option("+ supplier rule", "supplier"));
    if (it.gl_account) rule.appendChild(new Option("+ account rule", "gl_account"));
    rule.disabled = !canReview;
    const correct = el("button", "Correct");
    correct.type = "button";
    correct.disabled = !canReview;
    correct.addEventListener("click", () => reviewLine(it.transaction_id, code.value.trim(), rule.value).catch(fail));
    actions.append(accept, code, correct, rule);
    body.appendChild(row([it.transaction_id, it.date, { text: fmt(it.spend_usd), cls: "num" }, it.supplier_id || "",
      it.description || "", it.gl_account_name || it.gl_account || "", c.naics || "", { text: String(c.category || ""), cls: "num" },
      c.source || "", { text: fmt(c.confidence || 0, 2), cls: "num" }, actions]));
  }
  if (!page.data.length) body.appendChild(row(["Nothing to review.", "", "", "", "", "", "", "", "", "", ""]));
  $("cl-prev").disabled = next === 0;
  $("cl-next").disabled = !page.page_info.has_next_page;
}

async function reviewLine(id, naics, rule) {
  const out = $("cl-review-status");
  out.textContent = "";
  if (naics === "") { out.textContent = "Give the right six-digit NAICS code to correct " + id + "."; return; }
  const item = { transaction_id: id };
  if (naics) item.naics_code = naics;
  const body = { items: [item] };
  if (rule) body.rule = { kind: rule };
  let r;
  try {
    r = await api("/api/v1/classification/review", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) {
    if (e instanceof Unauthorized) throw e;
    out.textContent = e.message;
    return;
  }
  const v = r.reviewed[0];
  say(id + " " + v.verdict + " as NAICS " + v.naics_code + " (category " + v.category + "); " + fmt(r.lines_changed) +
    " lines calculated again" + (r.rule ? "; rule " + r.rule.id + " added" : "") + ".");
  await loadClassification();
}

async function loadCoverage() {
  const c = await api("/api/v1/classification/coverage" + qs(periodQuery()));
  $("cl-coverage").textContent = fmt(c.lines) + " lines, " + fmt(c.spend_usd) + " USD, " + fmt(tonnes(c.co2e_kg), 2) +
    " tCO2e. Needing review: " + fmt(c.needs_review.lines) + " lines, " + fmt(c.needs_review.spend_usd) + " USD.";
  let body = $("cl-coverage-table").tBodies[0];
  body.replaceChildren();
  for (const r of c.by_source) {
    body.appendChild(row([r.source.replace(/_/g, " "), { text: fmt(r.lines), cls: "num" }, { text: fmt(r.spend_usd), cls: "num" },
      { text: pct(r.spend_share), cls: "num" }, { text: fmt(tonnes(r.co2e_kg), 2), cls: "num" }, { text: pct(r.co2e_share), cls: "num" }]));
  }
  body = $("cl-suppliers").tBodies[0];
  body.replaceChildren();
  for (const s of c.largest_unclassified_suppliers) {
    body.appendChild(row([s.supplier_id || "(none)", { text: fmt(s.lines), cls: "num" }, { text: fmt(s.spend_usd), cls: "num" },
      { text: fmt(tonnes(s.co2e_kg), 2), cls: "num" }, { text: fmt(s.needs_review_lines), cls: "num" }]));
  }
  if (!c.largest_unclassified_suppliers.length) body.appendChild(row(["None.", "", "", "", ""]));
}

async function loadRules() {
  const r = await api("/api/v1/classification/rules");
  const body = $("cl-rules").tBodies[0];
  body.replaceChildren();
  const canEdit = state.me && state.me.role !== "viewer";
  for (const x of r.rules) {
    const del = el("button", "Delete");
    del.type = "button";
    del.disabled = !canEdit;
    del.addEventListener("click", () => api("/api/v1/classification/rules/" + x.id, { method: "DELETE" }).then(loadRules).catch(fail));
    body.appendChild(row([{ text: String(x.id), cls: "num" }, x.kind, x.pattern, x.naics_code, { text: String(x.category), cls: "num" },
      x.capex ? "yes" : "", x.created_at + " by " + x.created_by, del]));
  }
  if (!r.rules.length) body.appendChild(row(["No rule yet.", "", "", "", "", "", "", ""]));
}

async function addRule() {
  const out = $("cl-rule-status");
  out.textContent = "";
  const body = { kind: $("r-kind").value, pattern: $("r-pattern").value.trim(), naics_code: $("r-naics").value.trim(), capex: $("r-capex").value === "1" };
  try {
    await api("/api/v1/classification/rules", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) {
    if (e instanceof Unauthorized) throw e;
    out.textContent = e.message;
    return;
  }
  $("cl-rule-form").reset();
  await loadRules();
}

// ---- audit log ----

async function loadAudit(delta) {
  if (delta === 0) { state.auditCursors = [null]; state.auditPage = 0; }
  const next = state.auditPage + delta;
  const page = await api("/api/v1/audit" + qs({ action: $("a-action").value.trim(), line: $("a-line").value.trim(),
    since: $("a-since").value, until: $("a-until").value, limit: 25, cursor: state.auditCursors[next] }));
  state.auditPage = next;
  state.auditCursors[next + 1] = page.page_info.end_cursor;
  const body = $("audit-table").tBodies[0];
  body.replaceChildren();
  for (const e of page.data) {
    const detail = JSON.stringify(e.detail);
    const d = el("span", detail.length > 120 ? detail.slice(0, 117) + "…" : detail, "mono");
    d.title = detail;
    const h = el("span", e.hash.slice(0, 12), "mono");
    h.title = e.hash;
    body.appendChild(row([{ text: String(e.seq), cls: "num" }, e.at, e.actor, e.request_id || "", e.action, e.subject,
      { text: fmt(e.lines), cls: "num" }, d, h]));
  }
  if (!page.data.length) body.appendChild(row(["No entry matches.", "", "", "", "", "", "", "", ""]));
  $("audit-prev").disabled = next === 0;
  $("audit-next").disabled = !page.page_info.has_next_page;
}

async function verifyAudit() {
  const v = await api("/api/v1/audit/verify");
  const p = $("audit-verified");
  p.hidden = false;
  p.classList.toggle("bad", !v.ok);
  p.textContent = v.ok
    ? "The chain is intact: " + fmt(v.entries) + " entries covering " + fmt(v.lines) + " line changes; head entry " + v.head_seq + " (" + v.head_hash.slice(0, 16) + "…)."
    : "The chain is broken at entry " + v.broken.seq + ": " + v.broken.reason;
  if (v.unsealed_imports.length) p.textContent += " Imports not sealed yet: " + v.unsealed_imports.join(", ") + ".";
}

async function closePeriod(year) {
  const v = await api("/api/v1/periods/" + year + "/close", { method: "POST" });
  say("Closed " + year + " as version " + v.version + ": " + fmt(tonnes(v.total_co2e_kg), 3) + " tCO2e.");
  await loadPeriods();
}

async function reopenPeriod(year, reason) {
  await api("/api/v1/periods/" + year + "/reopen", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ reason }) });
  say("Reopened " + year + ".");
  await loadPeriods();
}

// ---- wiring ----

// ---- live updates ----
// GET /api/v1/events is Server-Sent Events. EventSource cannot send the API key, so the stream
// is read with fetch; it reconnects with Last-Event-ID (backing off while the server is away).

const live = { ctrl: null, lastId: null, generation: null, retry: 1000, timer: null,
  connected: false, waiters: new Map(), refresh: null };

function liveShow() {
  const l = $("live");
  l.hidden = !state.key;
  l.classList.toggle("off", !live.connected);
  l.textContent = live.connected ? "live" : "reconnecting";
}

function liveStart() {
  if (live.ctrl || !state.key) return;
  const ctrl = new AbortController();
  live.ctrl = ctrl;
  liveRead(ctrl).catch(() => {}).finally(() => {
    live.connected = false;
    if (live.ctrl !== ctrl) return; // stopped on purpose
    live.ctrl = null;
    liveShow();
    live.timer = setTimeout(liveStart, live.retry);
    live.retry = Math.min(live.retry * 2, 15000);
  });
}

function liveStop() {
  const c = live.ctrl;
  live.ctrl = null;
  if (c) c.abort();
  clearTimeout(live.timer);
  Object.assign(live, { lastId: null, generation: null, connected: false, retry: 1000 });
  $("live").hidden = true;
}

async function liveRead(ctrl) {
  const headers = { Authorization: "Bearer " + state.key };
  if (live.lastId) headers["Last-Event-ID"] = live.lastId;
  const res = await fetch("/api/v1/events", { headers, signal: ctrl.signal, cache: "no-store" });
  if (res.status === 401) { live.ctrl = null; fail(new Unauthorized()); return; }
  if (!res.ok || !res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let at;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      let type = "message", data = "", id = null;
      for (const line of block.split("\n")) {
        if (!line || line[0] === ":") continue; // heartbeat
        const i = line.indexOf(":");
        const k = i < 0 ? line : line.slice(0, i);
        let v = i < 0 ? "" : line.slice(i + 1);
        if (v[0] === " ") v = v.slice(1);
        if (k === "event") type = v;
        else if (k === "data") data += (data ? "\n" : "") + v;
        else if (k === "id") id = v;
      }
      if (id !== null) live.lastId = id;
      let d = null;
      try { d = data ? JSON.parse(data) : null; } catch (e) { continue; }
      onLive(type, d);
    }
  }
}

function onLive(type, d) {
  if (type === "ready") {
    live.connected = true;
    live.retry = 1000;
    liveShow();
    // Back after a break that could not be resumed, and the data moved meanwhile: re-read.
    if (!d.resumed && live.generation !== null && d.generation !== live.generation) refreshView();
    live.generation = d.generation;
  } else if (type === "data") {
    live.generation = d.generation;
    refreshView();
  } else if (type === "job") {
    const w = live.waiters.get(d.job_id);
    if (w) w(d);
  } else if (type === "review") {
    showQueueSize(d);
    if (!$("page-classification").hidden) loadQueue(0).catch(fail);
  } else if (type === "period") {
    if (!$("page-periods").hidden) loadPeriods().catch(fail);
  } else if (type === "reset") {
    refreshView();
    for (const [id, w] of live.waiters) api("/api/v1/jobs/" + id).then(w).catch(() => {});
  } else if (type === "end" && d.reason === "key_revoked") {
    signOut("Your API key is no longer accepted: it was revoked. Sign in with another key.");
  }
}

// The page on screen re-reads its data (at most every half second, after a burst of changes).
function refreshView() {
  if (live.refresh) return;
  live.refresh = setTimeout(() => {
    live.refresh = null;
    if (!$("page-overview").hidden) loadOverview().catch(fail);
  }, 500);
}

// Follows a job until it ends: its live events call onUpdate; resolves with its last state. The
// job is read once at the start (it may have moved before we listened), and again every two
// seconds only while the live stream is down.
function followJob(id, onUpdate) {
  return new Promise((resolve, reject) => {
    let over = false;
    const seen = (j) => {
      if (over) return;
      onUpdate(j);
      if (j.status === "succeeded" || j.status === "failed") {
        over = true;
        live.waiters.delete(id);
        clearInterval(fallback);
        resolve(j);
      }
    };
    live.waiters.set(id, seen);
    const read = () => api("/api/v1/jobs/" + id).then(seen).catch((e) => {
      over = true; live.waiters.delete(id); clearInterval(fallback); reject(e);
    });
    const fallback = setInterval(() => { if (!live.connected) read(); }, 2000);
    read();
  });
}

function init() {
  for (let c = 1; c <= 15; c++) $("f-category").appendChild(new Option(c + ". " + CATEGORY_NAMES[c], String(c)));
  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (await signIn($("key").value.trim())) {
      $("key").value = "";
      if (location.hash === "#/overview") route(); else location.hash = "#/overview";
    }
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("period").addEventListener("change", () => loadOverview().catch(fail));
  $("sup-prev").addEventListener("click", () => supplierPage(-1));
  $("sup-next").addEventListener("click", () => supplierPage(1));
  $("tx-filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadTransactions(0).catch(fail); });
  $("tx-prev").addEventListener("click", () => loadTransactions(-1).catch(fail));
  $("tx-next").addEventListener("click", () => loadTransactions(1).catch(fail));
  $("import-form").addEventListener("submit", (ev) => { ev.preventDefault(); const f = $("import-file").files[0]; if (f) startImport(f); });
  $("factor-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadFactors(0).catch(fail); });
  $("factor-prev").addEventListener("click", () => loadFactors(-1).catch(fail));
  $("factor-next").addEventListener("click", () => loadFactors(1).catch(fail));
  $("restate-form").addEventListener("submit", (ev) => { ev.preventDefault(); previewRestatement().catch(fail); });
  $("compare-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadCompare($("compare-year").value, $("compare-denominator").value.trim()).catch(fail); });
  $("close-form").addEventListener("submit", (ev) => { ev.preventDefault(); closePeriod($("close-year").value).catch(fail); });
  $("fp-connect").addEventListener("submit", (ev) => { ev.preventDefault(); connectSupplier().catch(fail); });
  $("cl-prev").addEventListener("click", () => loadQueue(-1).catch(fail));
  $("cl-next").addEventListener("click", () => loadQueue(1).catch(fail));
  $("cl-match-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadMatches().catch(fail); });
  $("cl-rule-form").addEventListener("submit", (ev) => { ev.preventDefault(); addRule().catch(fail); });
  $("audit-filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadAudit(0).catch(fail); });
  $("audit-prev").addEventListener("click", () => loadAudit(-1).catch(fail));
  $("audit-next").addEventListener("click", () => loadAudit(1).catch(fail));
  $("audit-verify").addEventListener("click", () => verifyAudit().catch(fail));
  $("reopen-form").addEventListener("submit", (ev) => { ev.preventDefault(); reopenPeriod($("reopen-year").value, $("reopen-reason").value).catch(fail); });
  window.addEventListener("hashchange", route);
  route();
}

init();
