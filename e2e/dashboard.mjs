// End-to-end test of the web dashboard in headless Chromium against a running `vcci serve`.
//
//   node e2e/dashboard.mjs BASE_URL ADMIN_KEY VCCI_BINARY DATA_DIR SCREENSHOT_DIR
//
// Run by crates/vcci/tests/dashboard.rs (which starts the server); exits non-zero on the
// first failed check. Uses Debian's chromium (CHROMIUM, default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

const [base, adminKey, vcci, dataDir, shots] = process.argv.slice(2);
if (!shots) {
  console.error("usage: dashboard.mjs BASE_URL ADMIN_KEY VCCI_BINARY DATA_DIR SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

function check(cond, message) {
  if (!cond) throw new Error("check failed: " + message);
  console.log("ok - " + message);
}

async function apiGet(path, key = adminKey) {
  const r = await fetch(base + path, { headers: { Authorization: "Bearer " + key } });
  if (!r.ok) throw new Error(path + " answered " + r.status);
  return r.json();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (e) => errors.push(e.message));
  // 401s are expected (the wrong and the revoked key); anything else is a fault.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().includes("status of 401")) errors.push(m.text()); });

  // Sign-in: a wrong key gets a clear message.
  await page.goto(base + "/");
  await page.locator("#page-signin").waitFor({ state: "visible" });
  await page.screenshot({ path: join(shots, "signin.png") });
  await page.fill("#key", "vcci_not_a_real_key");
  await page.click("#signin-form button[type=submit]");
  await page.locator("#signin-error").filter({ hasText: "not accepted" }).waitFor();
  check(true, "a wrong key shows a clear message");

  // The right key: the organization and role are shown; the overview loads.
  const t0 = Date.now();
  await page.fill("#key", adminKey);
  await page.click("#signin-form button[type=submit]");
  await page.locator("#kpi-total[data-kg]").waitFor();
  await page.waitForFunction(() => window.Chart && Chart.getChart(document.getElementById("chart-month")));
  const overviewMs = Date.now() - t0;
  console.log(`overview loaded and rendered in ${overviewMs} ms (sign-in included)`);
  check(overviewMs < 2000, `the overview renders quickly (${overviewMs} ms)`);
  check((await page.textContent("#who")).includes("demo · admin"), "the organization and role are shown");

  // Totals equal the API's summary.
  const summary = await apiGet("/api/v1/emissions/summary");
  const shownKg = Number(await page.getAttribute("#kpi-total", "data-kg"));
  check(shownKg === summary.total_co2e_kg, `the overview total equals the API summary (${summary.total_co2e_kg} kg)`);
  const shownT = (await page.textContent("#kpi-total")).replace(/,/g, "");
  check(Math.abs(Number(shownT) - summary.total_co2e_kg / 1000) < 0.051, `shown as ${shownT} tCO2e`);
  check((await page.textContent("#kpi-lines")).replace(/,/g, "") === String(summary.transaction_count), "the line count equals the API's");

  // The category bar chart is drawn with one bar per category with data.
  const bars = await page.evaluate(() => {
    const c = Chart.getChart(document.getElementById("chart-category"));
    return { n: c.data.datasets[0].data.length, visible: c.getDatasetMeta(0).data.filter((b) => b.width > 1).length };
  });
  check(bars.n === summary.by_category.length && bars.n > 0, `a bar per category with data (${bars.n})`);
  check(bars.visible > 0, "the bars are drawn");
  const noData = await page.textContent("#no-data");
  check(summary.categories_without_data.every((n) => noData.includes(n + ". ")), "categories without data are listed as not reported");
  // The demo's electricity and gas: Scope 1 and 2 shown apart, not in the total.
  const apart = summary.scope_1_2_recorded_apart;
  const apartText = await page.textContent("#scope12-apart");
  check(apart.scope_2_kg > 0 && apartText.includes("Recorded apart, not in this total: Scope 1 " + (apart.scope_1_kg / 1000).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })),
    `Scope 1/2 recorded apart is shown (${apartText})`);
  await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });

  // Live updates: the stream is up, and a write elsewhere (here, the API) refreshes the overview
  // by itself.
  await page.locator("#live:not(.off)", { hasText: "live" }).waitFor();
  check(true, "the live-update stream is connected");
  const w = await fetch(base + "/api/v1/transactions", { method: "POST",
    headers: { Authorization: "Bearer " + adminKey, "Content-Type": "application/json" },
    body: JSON.stringify({ transactions: [{ transaction_id: "e2e-live-1", date: "2023-06-01", amount: 250000, currency: "USD", naics_code: "484121" }] }) });
  check(w.ok, "a line is written through the API");
  const after = await apiGet("/api/v1/emissions/summary");
  check(after.total_co2e_kg > summary.total_co2e_kg, "the write raises the total");
  await page.waitForFunction((kg) => Number(document.getElementById("kpi-total").dataset.kg) === kg, after.total_co2e_kg, { timeout: 10000 });
  check(true, `the overview refreshed itself to the new total (${after.total_co2e_kg} kg) without a reload`);

  // Top suppliers page forward.
  const firstSupplier = await page.textContent("#suppliers-table tbody tr:first-child td:nth-child(2)");
  await page.click("#sup-next");
  await page.locator("#suppliers-table tbody tr:first-child td:first-child", { hasText: "11" }).waitFor();
  check(firstSupplier !== await page.textContent("#suppliers-table tbody tr:first-child td:nth-child(2)"), "top suppliers page forward");

  // Transactions: three pages without repeats, then a line's audit trail.
  await page.click("nav a[data-page=transactions]");
  await page.locator("#tx-table tbody tr button").first().waitFor();
  const seen = [];
  for (let p = 1; p <= 3; p++) {
    await page.locator("#tx-page", { hasText: "Page " + p }).waitFor();
    const ids = await page.$$eval("#tx-table tbody tr button", (bs) => bs.map((b) => b.textContent));
    check(ids.length === 25, `page ${p} has 25 lines`);
    seen.push(...ids);
    if (p < 3) await page.click("#tx-next");
  }
  check(new Set(seen).size === seen.length, "paging through transactions shows no repeats");
  await page.locator("#tx-table tbody tr button").first().click();
  await page.locator("#tx-detail h2", { hasText: "Factor" }).waitFor();
  const detail = await page.textContent("#tx-detail");
  check(detail.includes("Version") && detail.includes("Data quality") && detail.includes("Fallbacks"), "a line's audit trail is shown");
  await page.screenshot({ path: join(shots, "transactions.png"), fullPage: true });

  // A hybrid line (a demo supplier reporting Scope 1+2 only): its method and both parts.
  const hy = await apiGet("/api/v1/transactions?supplier_id=SUP-00103&limit=1");
  check(hy.data.length === 1 && hy.data[0].emission.method === "hybrid", "the demo has a hybrid line (SUP-00103)");
  await page.fill("#f-supplier", "SUP-00103");
  await page.selectOption("#f-category", "");
  await page.click("#tx-filters button[type=submit]");
  await page.locator("#tx-table tbody tr button", { hasText: hy.data[0].transaction_id }).click();
  await page.locator("#tx-detail h2", { hasText: "Supplier data" }).waitFor();
  const hyText = await page.textContent("#tx-detail");
  check(hyText.includes("Hybrid") && hyText.includes("Supplier Scope 1+2") && hyText.includes("Upstream share") && hyText.includes("scope 1 2"),
    "a hybrid line shows its method, boundary and both parts");

  // A line without a NAICS code (a demo supplier without one): its classification and why.
  const un = await apiGet("/api/v1/transactions?supplier_id=SUP-00006&limit=25");
  const cl = un.data.find((t) => t.emission.classification);
  check(cl !== undefined, "the demo has classified lines (SUP-00006)");
  await page.fill("#f-supplier", "SUP-00006");
  await page.click("#tx-filters button[type=submit]");
  await page.locator("#tx-table tbody tr button", { hasText: cl.transaction_id }).click();
  await page.locator("#tx-detail h2", { hasText: "Classification" }).waitFor();
  const clText = await page.textContent("#tx-detail");
  check(clText.includes(cl.emission.classification.naics) && clText.includes("built-in model") && clText.includes("Confidence"),
    "a classified line shows its code, source and confidence");
  await page.fill("#f-supplier", "");

  // The review queue: largest spend first; a correction settles the line (and the flagged
  // lines of the same input), the badge follows through the live stream.
  const q0 = await apiGet("/api/v1/classification/review?limit=5");
  check(q0.queue.lines > 0, `the demo has lines to review (${q0.queue.lines})`);
  await page.click("nav a[data-page=classification]");
  await page.locator("#cl-queue tbody tr td", { hasText: q0.data[0].transaction_id }).first().waitFor();
  const spends = await page.$$eval("#cl-queue tbody tr td:nth-child(3)", (tds) => tds.map((t) => Number(t.textContent.replace(/,/g, ""))));
  check(spends.every((v, i) => i === 0 || spends[i - 1] >= v), "the queue is ordered by spend");
  check(Number((await page.textContent("#review-count")).replace(/\D/g, "")) === Math.min(q0.queue.lines, 999), "the badge shows the queue's size");
  await page.fill(`#cl-queue input[aria-label="Right NAICS code for ${q0.data[0].transaction_id}"]`, "541611");
  await page.locator("#cl-queue tbody tr", { hasText: q0.data[0].transaction_id }).locator("button", { hasText: "Correct" }).click();
  await page.locator("#status", { hasText: q0.data[0].transaction_id + " corrected as NAICS 541611" }).waitFor();
  const fixed = await apiGet("/api/v1/transactions/" + encodeURIComponent(q0.data[0].transaction_id));
  check(fixed.emission.classification.source === "review" && fixed.emission.classification.naics === "541611", "the corrected line is calculated with the reviewed code");
  const q1 = await apiGet("/api/v1/classification/review?limit=1");
  check(q1.queue.lines < q0.queue.lines, `the queue shrank (${q0.queue.lines} → ${q1.queue.lines})`);
  await page.locator("#review-count", { hasText: String(Math.min(q1.queue.lines, 999)) }).waitFor();
  await page.locator("#cl-coverage-table tbody tr td", { hasText: /^review$/ }).waitFor();
  check(true, "coverage lists the reviewed spend");
  // Supplier names: a close name is a pair to review; merged from the dashboard, then undone.
  const post = (path, body) => fetch(base + path, { method: "POST", headers: { Authorization: "Bearer " + adminKey, "Content-Type": "application/json" }, body: JSON.stringify(body) });
  check((await post("/api/v1/suppliers", { suppliers: [{ supplier_id: "E2E-ACME", name: "Acme Inc" }] })).ok, "a supplier is upserted");
  check((await post("/api/v1/transactions", { transactions: [{ transaction_id: "E2E-N1", date: "2025-02-01", amount: 100, currency: "USD", naics_code: "334111", supplier_name: "Acma Ltd" }] })).ok, "a line names a close supplier");
  await page.click("nav a[data-page=overview]");
  await page.click("nav a[data-page=classification]");
  await page.fill("#m-q", "acma");
  await page.click("#cl-match-form button[type=submit]");
  await page.locator("#cl-matches tbody tr", { hasText: "Acma Ltd" }).waitFor();
  await page.click("#cl-matches button[aria-label='Merge Acma Ltd into E2E-ACME']");
  await page.locator("#status", { hasText: "Merged Acma Ltd into E2E-ACME: 1 lines moved" }).waitFor();
  const merged = await apiGet("/api/v1/transactions/E2E-N1");
  check(merged.supplier_id === "E2E-ACME" && merged.supplier_as_named === "Acma Ltd", "the merged line belongs to the existing supplier and keeps its name");
  const mergeRow = page.locator("#cl-merges tbody tr", { hasText: "Acma Ltd" });
  await mergeRow.locator("button", { hasText: "Undo" }).click();
  await page.locator("#status", { hasText: "Acma Ltd is back with 1 lines" }).waitFor();
  check((await apiGet("/api/v1/transactions/E2E-N1")).supplier_id === "Acma Ltd", "undoing the merge gives the line back");
  await page.screenshot({ path: join(shots, "classification.png"), fullPage: true });
  await page.click("nav a[data-page=transactions]");

  // Filters: one category only.
  await page.selectOption("#f-category", "4");
  await page.click("#tx-filters button[type=submit]");
  await page.waitForFunction(() => [...document.querySelectorAll("#tx-table tbody tr td:nth-child(4)")].every((td) => td.textContent.startsWith("4.")));
  check(true, "the category filter applies");

  // Import a small CSV with bad lines: progress, accepted count, rejected lines.
  const csv = "transaction_id,date,amount,currency,naics_code\n" +
    "E2E-1,2025-03-01,100,USD,484121\nE2E-2,2025-03-02,not-a-number,USD,484121\n" +
    "E2E-3,2025-03-03,250,EUR,334111\nE2E-4,2025-02-30,10,USD,484121\nE2E-5,2025-03-05,75,GBP,541511\n";
  const file = join(tmpdir(), `vcci-e2e-${process.pid}.csv`);
  writeFileSync(file, csv);
  // Its progress comes as live events: the job is read only at its start and its end.
  const jobReads = [];
  page.on("request", (r) => { if (/\/api\/v1\/jobs\/[0-9a-f]{32}$/.test(r.url())) jobReads.push(r.url()); });
  await page.click("nav a[data-page=import]");
  await page.setInputFiles("#import-file", file);
  await page.click("#import-form button[type=submit]");
  await page.locator("#job-id").filter({ hasText: /[0-9a-f]{32}/ }).waitFor();
  check(await page.locator("#job-progress").isVisible(), "the import shows its progress");
  await page.locator("#job-status", { hasText: "succeeded" }).waitFor({ timeout: 30000 });
  check((await page.textContent("#job-accepted")) === "3", "the accepted count is shown (3)");
  check(jobReads.length <= 2, `the import was followed by live events, not polling (${jobReads.length} reads of the job)`);
  check((await page.textContent("#job-rejected")) === "2", "the rejected count is shown (2)");
  const rejected = await page.$$eval("#job-errors tbody tr", (rs) => rs.map((r) => r.textContent));
  check(rejected.length === 2 && rejected[0].startsWith("3amount") && rejected[1].startsWith("5date"), "the rejected lines are listed with line, column and reason");
  await page.screenshot({ path: join(shots, "import.png"), fullPage: true });

  // Factor search.
  await page.click("nav a[data-page=factors]");
  await page.fill("#factor-q", "HGV diesel");
  await page.click("#factor-form button[type=submit]");
  await page.locator("#factor-table tbody tr td", { hasText: "desnz" }).first().waitFor();
  check(true, "factor search finds DESNZ factors");
  const scopes = await page.$$eval("#factor-table tbody tr td:nth-child(4)", (tds) => tds.map((t) => t.textContent));
  check(scopes.some((s) => s) && scopes.filter((s) => s).every((s) => /^Scope [123]$|^Outside of Scopes$/.test(s)), `the factors' scopes are shown (${[...new Set(scopes)]})`);
  await page.screenshot({ path: join(shots, "factors.png"), fullPage: true });

  // Periods: close 2023 (its figures frozen as version 1), see the version, reopen it.
  const target = await fetch(base + "/api/v1/targets", { method: "POST", headers: { Authorization: "Bearer " + adminKey, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "e2e freight", categories: [4], base_year: 2023, target_year: 2030, reduction_pct: 30 }) });
  check(target.ok, "a target is recorded");
  await page.click("nav a[data-page=periods]");
  await page.locator("#period-table tbody tr", { hasText: "No year has been closed." }).waitFor();
  check(await page.locator("#close-form").isVisible(), "an admin sees the close form");
  const y23 = await apiGet("/api/v1/emissions/summary?date_from=2023-01-01&date_to=2023-12-31");
  await page.fill("#close-year", "2023");
  await page.click("#close-form button[type=submit]");
  await page.locator("#period-table tbody tr td:nth-child(2)", { hasText: /^closed$/ }).waitFor();
  const closedRow = await page.$$eval("#period-table tbody tr:first-child td", (tds) => tds.map((t) => t.textContent));
  check(closedRow[0] === "2023" && closedRow[1] === "closed" && closedRow[2] === "1", `2023 is listed as closed, version 1 (${closedRow.slice(0, 3)})`);
  check(Number(closedRow[3].replace(/,/g, "")) === Number((y23.total_co2e_kg / 1000).toFixed(3)), `the version's total is the year's (${closedRow[3]} tCO2e)`);
  await page.click("#period-table button[aria-label='Show version 1 of 2023']");
  await page.locator("#version-detail h2", { hasText: "2023 version 1" }).waitFor();
  check((await page.$$eval("#version-table tr", (rs) => rs.length)) > 1, "the version's categories are shown");
  const refused = await fetch(base + "/api/v1/transactions", { method: "POST", headers: { Authorization: "Bearer " + adminKey, "Content-Type": "application/json" },
    body: JSON.stringify({ transactions: [{ transaction_id: "late-2023", date: "2023-12-01", amount: 10, naics_code: "484121" }] }) }).then((r) => r.json());
  check(refused.accepted === 0 && refused.rejected[0].error.code === "period_closed", "a write to the closed year is refused");
  // The restatement preview of EPA v1.2: its restated 2023 total is the API's; nothing changes.
  await page.selectOption("#restate-epa", "1.2");
  await page.click("#restate-form button[type=submit]");
  await page.locator("#restate-result h3", { hasText: "2023 (version 1)" }).waitFor();
  const preview = await fetch(base + "/api/v1/restatements/preview", { method: "POST", headers: { Authorization: "Bearer " + adminKey, "Content-Type": "application/json" },
    body: JSON.stringify({ epa_version: "1.2" }) }).then((r) => r.json());
  const shownTotal = await page.$$eval(".restate-table tr:last-child td", (tds) => tds.map((t) => t.textContent));
  check(shownTotal[0] === "Total" && Number(shownTotal[2].replace(/,/g, "")) === Number((preview.years[0].total.after_co2e_kg / 1000).toFixed(3)),
    `the restatement preview shows the restated total (${shownTotal.slice(0, 3)})`);
  check((await apiGet("/api/v1/periods/2023")).versions.length === 1, "a preview makes no version");
  await page.screenshot({ path: join(shots, "periods.png"), fullPage: true });
  await page.fill("#reopen-year", "2023");
  await page.fill("#reopen-reason", "e2e check");
  await page.click("#reopen-form button[type=submit]");
  await page.locator("#period-table tbody tr td", { hasText: "e2e check" }).waitFor();
  check(true, "a reopened year shows its reason");

  // Year over year: 2024 against 2023, each category's figures equal to the API's.
  await page.fill("#compare-year", "2024");
  await page.click("#compare-form button[type=submit]");
  await page.locator("#compare-table tbody tr td", { hasText: "Total" }).waitFor();
  const cmp = await apiGet("/api/v1/emissions/compare?year=2024");
  const totalRow = await page.$$eval("#compare-table tbody tr:last-child td", (tds) => tds.map((t) => t.textContent));
  check(Number(totalRow[1].replace(/,/g, "")) === Number((cmp.total.year_co2e_kg / 1000).toFixed(3)) &&
    Number(totalRow[2].replace(/,/g, "")) === Number((cmp.total.previous_year_co2e_kg / 1000).toFixed(3)),
    `the year-over-year totals are the API's (${totalRow.slice(0, 3)})`);
  // Targets: the latest year's figure against the linear path, as the API gives them.
  const { targets } = await apiGet("/api/v1/targets");
  const lastYear = targets[0].years.filter((y) => y.co2e_kg !== null).pop();
  const targetRow = await page.$$eval("#target-table tbody tr:first-child td", (tds) => tds.map((t) => t.textContent));
  check(targetRow[0] === "e2e freight" && targetRow[4] === String(lastYear.year) &&
    Number(targetRow[5].replace(/,/g, "")) === Number((lastYear.co2e_kg / 1000).toFixed(3)) &&
    Number(targetRow[6].replace(/,/g, "")) === Number((lastYear.path_co2e_kg / 1000).toFixed(3)),
    `the target's progress is shown (${targetRow.slice(4, 8)})`);
  await page.screenshot({ path: join(shots, "periods.png"), fullPage: true });

  // The audit log: the close and the reopen, by the admin key, with their request ids; the
  // chain checks out.
  await page.click("nav a[data-page=audit]");
  await page.locator("#audit-table tbody tr td", { hasText: "period.reopened" }).first().waitFor();
  await page.fill("#a-action", "period.");
  await page.click("#audit-filters button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("#audit-table tbody tr").length === 2);
  const auditRows = await page.$$eval("#audit-table tbody tr", (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
  const api = (await apiGet("/api/v1/audit?action=period.")).data;
  check(auditRows[0][4] === "period.reopened" && auditRows[1][4] === "period.closed" && auditRows[0][5] === "2023",
    `the audit log lists the reopen and the close (${auditRows.map((r) => r[4])})`);
  check(auditRows.every((r) => r[2].endsWith("(admin)") && r[3] !== ""), "each entry names the key's role and the request");
  check(auditRows[0][0] === String(api[0].seq) && auditRows[0][7].includes("e2e check"), "the entry's detail has the reason");
  await page.click("#audit-verify");
  await page.locator("#audit-verified", { hasText: "The chain is intact" }).waitFor();
  check(true, "the audit chain verifies from the dashboard");
  await page.screenshot({ path: join(shots, "audit.png"), fullPage: true });

  // Product footprints (PACT): a supplier's footprint received from a file, a line naming its
  // product, and one of our own published: the page shows coverage, lineage and both lists.
  const fpDir = join(tmpdir(), "vcci-e2e-pact-" + process.pid);
  mkdirSync(fpDir, { recursive: true });
  const pcf = (id, product) => ({
    id, specVersion: "3.0.0", created: "2025-01-10T00:00:00Z", status: "Active", companyName: "E2E Steel",
    companyIds: ["urn:company:example:e2e"], productDescription: "coil", productIds: [product], productNameCompany: "HRC",
    pcf: { declaredUnitOfMeasurement: "kilogram", declaredUnitAmount: "1000", productMassPerDeclaredUnit: "1000",
      referencePeriodStart: "2023-01-01T00:00:00Z", referencePeriodEnd: "2024-01-01T00:00:00Z",
      pcfExcludingBiogenicUptake: "2400", pcfIncludingBiogenicUptake: "2400", fossilGhgEmissions: "2400",
      fossilCarbonContent: "0", ipccCharacterizationFactors: ["AR6"], crossSectoralStandards: ["GHGP-Product"],
      exemptedEmissionsPercent: "0" } });
  writeFileSync(join(fpDir, "received.json"), JSON.stringify([pcf("e2e00000-0000-4000-8000-000000000001", "urn:gtin:0000000000042")]));
  writeFileSync(join(fpDir, "own.json"), JSON.stringify([pcf("e2e00000-0000-4000-8000-000000000002", "urn:gtin:0000000000077")]));
  writeFileSync(join(fpDir, "lines.csv"), "transaction_id,date,supplier_id,quantity,unit,product_id\nE2E-PCF-1,2026-01-15,E2E-STEEL,500,kg,urn:gtin:0000000000042\n");
  execFileSync(vcci, ["--data-dir", dataDir, "pact", "import", "--org", "demo", "--supplier", "E2E-STEEL", join(fpDir, "received.json")]);
  execFileSync(vcci, ["--data-dir", dataDir, "pact", "publish", "--org", "demo", join(fpDir, "own.json")]);
  execFileSync(vcci, ["--data-dir", dataDir, "import", "--org", "demo", join(fpDir, "lines.csv")]);
  await page.waitForTimeout(600); // the node picks up the other process's writes within its poll
  await page.click("nav a[data-page=footprints]");
  await page.locator("#fp-received tbody tr td", { hasText: "e2e00000-0000-4000-8000-000000000001" }).waitFor();
  const cov = await apiGet("/api/v1/pact/coverage");
  check(cov.lines_from_footprints === 1 && cov.co2e_kg_from_footprints === 1200, `the line is calculated from the footprint (${cov.co2e_kg_from_footprints} kg)`);
  check((await page.textContent("#fp-coverage")).startsWith("1 of 1 lines naming a product"), "the coverage is shown");
  const rec = await page.$$eval("#fp-received tbody tr td", (tds) => tds.map((t) => t.textContent));
  check(rec[1] === "E2E-STEEL" && rec[2] === "Active" && rec[3] === "yes" && rec[4] === "urn:gtin:0000000000042", `the received footprint is listed (${rec.slice(0, 5)})`);
  const pub = await page.$$eval("#fp-published tbody tr td", (tds) => tds.map((t) => t.textContent));
  check(pub[0] === "e2e00000-0000-4000-8000-000000000002" && pub[1] === "Active", "the published footprint is listed");
  // A connection to a supplier's host, from the form; its secret never comes back.
  await page.fill("#c-supplier", "E2E-STEEL");
  await page.fill("#c-url", "https://pact.e2e-steel.example");
  await page.fill("#c-client", "e2e-client");
  await page.fill("#c-secret", "e2e-secret-value");
  await page.click("#fp-connect button[type=submit]");
  await page.locator("#fp-connections tbody tr td", { hasText: "https://pact.e2e-steel.example" }).waitFor();
  const conns = await apiGet("/api/v1/pact/connections");
  check(conns.connections.length === 1 && conns.connections[0].breaker === "closed" && !JSON.stringify(conns).includes("e2e-secret-value"),
    "a connection is created from the dashboard, its secret never shown");
  await page.screenshot({ path: join(shots, "footprints.png"), fullPage: true });

  // Keyboard: the first Tab reaches the skip link; every control has a name.
  await page.goto(base + "/#/overview");
  await page.reload(); // still signed in: the key is kept for this tab
  await page.locator("#kpi-total[data-kg]").waitFor();
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.textContent === "Skip to content"), "keyboard: Tab reaches the skip link first");
  const unnamed = await page.$$eval("input, select, button", (els) => els.filter((e) => e.offsetParent && !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim()).length);
  check(unnamed === 0, "every visible control has a label or a name");

  // A narrow (mobile) screen: no horizontal scrolling of the page.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `no horizontal overflow on a narrow screen (${overflow}px)`);
  await page.screenshot({ path: join(shots, "overview-mobile.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  // A revoked key returns to sign-in.
  const viewerKey = execFileSync(vcci, ["--data-dir", dataDir, "keys", "create", "--org", "demo", "--role", "viewer"]).toString().trim().split("\n").pop();
  await page.click("#signout");
  await page.fill("#key", viewerKey);
  await page.click("#signin-form button[type=submit]");
  await page.locator("#who", { hasText: "viewer" }).waitFor();
  execFileSync(vcci, ["--data-dir", dataDir, "keys", "revoke", viewerKey]);
  // The node picks up the revocation within its poll (250 ms) and ends the key's live stream:
  // the page signs out by itself, without a click.
  await page.locator("#signin-error", { hasText: "no longer accepted: it was revoked" }).waitFor({ timeout: 10000 });
  check(await page.locator("#nav").isHidden(), "signed out: the navigation is hidden");
  check(await page.locator("#page-signin").isVisible(), "a revoked key returns to sign-in with a message");
  await page.screenshot({ path: join(shots, "revoked.png") });

  check(errors.length === 0, "no script errors: " + errors.join(" | "));
} finally {
  await browser.close();
}
console.log("all dashboard checks passed; screenshots in " + shots);
