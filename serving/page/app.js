// Timpora supervisor page: sign in with an API key, draw an inspection list, explain a case,
// download or print the list. Plain ES2020, no build step, nothing loaded from outside this server.
// Data from the API is only ever put into the DOM as text (textContent), never as HTML.
"use strict";

const KEY_STORE = "timpora.apiKey"; // sessionStorage: gone when the tab closes
const LANG_STORE = "timpora.lang"; // localStorage: the reader's language sticks

const TEXT = {
  id: {
    title: "Timpora — daftar pemeriksaan",
    subtitle: "Urutan kasus warga negara asing untuk tim pengawasan keimigrasian",
    otherLanguage: "English", otherLanguageLabel: "Switch the page to English",
    loginHeading: "Masuk dengan kunci API", apiKey: "Kunci API", signIn: "Masuk", signOut: "Keluar",
    keyHint: "Kunci hanya disimpan di tab ini dan hilang saat tab ditutup.",
    invalidKey: "Kunci API tidak valid", forbiddenRole: "Peran ini tidak boleh membuka daftar",
    filtersHeading: "Filter", asOf: "Tanggal (per)", k: "Kapasitas (kasus)", district: "Wilayah",
    allDistricts: "Semua", permitTypes: "Jenis izin", permitHint: "Tanpa centang = semua jenis",
    explorationShare: "Porsi eksplorasi", loadList: "Tampilkan daftar",
    note: "Skor mengurutkan pekerjaan; keputusan tetap di tangan petugas.",
    listHeading: "Daftar pemeriksaan", noList: "Belum ada daftar. Pilih filter lalu tampilkan daftar.",
    emptyList: "Tidak ada kasus yang memenuhi filter.",
    downloadCsv: "Unduh CSV", print: "Cetak", loading: "Memuat…",
    colListRank: "#", colPerson: "ID kasus", colScore: "Skor", colRank: "Peringkat",
    colDistrict: "Wilayah", colPermit: "Jenis izin", colSelection: "Seleksi", colReasons: "Alasan utama",
    MODEL: "Model", EXPLORATION: "Eksplorasi", propensity: "Peluang masuk daftar",
    openCase: "Buka penjelasan kasus", modelVersion: "Versi model", asOfShort: "Per", listId: "ID daftar",
    eligible: "Kasus memenuhi filter", split: "Model / eksplorasi",
    caseTitle: "Kasus", close: "Tutup", score: "Skor", rank: "Peringkat", rankOf: "dari",
    percentile: "Persentil", baseValue: "Nilai dasar (log-odds)", reasons: "Alasan utama",
    noReasons: "Tidak ada faktor yang menaikkan skor.", families: "Faktor per kelompok",
    feature: "Faktor", value: "Nilai", contribution: "Kontribusi",
    contributionNote: "Kontribusi dalam log-odds: positif menaikkan skor, negatif menurunkannya.",
    network: "Layanan tidak dapat dihubungi", badRequest: "Permintaan tidak valid",
    notFound: "Tidak ditemukan", serviceError: "Kesalahan layanan",
    driftWarning: "Peringatan: kasus yang dinilai sekarang berbeda dari kasus yang dipakai melatih model. "
      + "Skor bisa kurang andal sampai model dilatih ulang dengan data terbaru.",
    driftDetail: "Rincian teknis (bahasa Inggris)",
    explorationDesign: "Rancangan eksplorasi", designBoundary: "Dekat batas daftar", designUniform: "Seragam",
    downloadTemplate: "Unduh templat hasil", status: "Status", committed: "tetap", superseded: "diganti",
    ranks: (first, last) => `peringkat ${first}–${last}`,
    explorationSentence: (drawn, total, where) =>
      `${drawn} dari ${total} kasus ini diambil secara acak ${where} agar model dapat diperiksa; `
      + "periksa kasus-kasus itu seperti kasus lainnya.",
    fromOne: (ranks) => `dari ${ranks}`,
    fromMany: (parts) => `(${parts.map(([n, ranks]) => `${n} dari ${ranks}`).join(", ")})`,
  },
  en: {
    title: "Timpora — inspection list",
    subtitle: "Foreign-national cases in order, for immigration inspection teams",
    otherLanguage: "Bahasa Indonesia", otherLanguageLabel: "Tampilkan halaman dalam Bahasa Indonesia",
    loginHeading: "Sign in with an API key", apiKey: "API key", signIn: "Sign in", signOut: "Sign out",
    keyHint: "The key is kept in this tab only and is gone when the tab closes.",
    invalidKey: "Invalid API key", forbiddenRole: "This role may not open lists",
    filtersHeading: "Filters", asOf: "As of", k: "Capacity (cases)", district: "District",
    allDistricts: "All", permitTypes: "Permit types", permitHint: "None ticked = all types",
    explorationShare: "Exploration share", loadList: "Show list",
    note: "Scores order the work; officers decide.",
    listHeading: "Inspection list", noList: "No list yet. Choose the filters, then show the list.",
    emptyList: "No case matches the filters.",
    downloadCsv: "Download CSV", print: "Print", loading: "Loading…",
    colListRank: "#", colPerson: "Case id", colScore: "Score", colRank: "Overall rank",
    colDistrict: "District", colPermit: "Permit type", colSelection: "Selection", colReasons: "Top reasons",
    MODEL: "Model", EXPLORATION: "Exploration", propensity: "Chance of being listed",
    openCase: "Open the case explanation", modelVersion: "Model version", asOfShort: "As of", listId: "List id",
    eligible: "Cases matching the filters", split: "Model / exploration",
    caseTitle: "Case", close: "Close", score: "Score", rank: "Rank", rankOf: "of",
    percentile: "Percentile", baseValue: "Base value (log-odds)", reasons: "Top reasons",
    noReasons: "No feature raised the score.", families: "Factors by family",
    feature: "Feature", value: "Value", contribution: "Contribution",
    contributionNote: "Contributions in log-odds: positive raises the score, negative lowers it.",
    network: "The service cannot be reached", badRequest: "Invalid request",
    notFound: "Not found", serviceError: "Service error",
    driftWarning: "Warning: the cases scored now differ from the cases the model was trained on. "
      + "Scores may be less reliable until the model is retrained on recent data.",
    driftDetail: "Technical detail",
    explorationDesign: "Exploration design", designBoundary: "Near the cut-off", designUniform: "Uniform",
    downloadTemplate: "Download outcomes template", status: "Status", committed: "committed",
    superseded: "superseded",
    ranks: (first, last) => `ranks ${first}-${last}`,
    explorationSentence: (drawn, total, where) =>
      `${drawn} of these ${total} cases were drawn at random ${where} so that the model can be checked; `
      + "inspect them like the others.",
    fromOne: (ranks) => `from ${ranks}`,
    fromMany: (parts) => `(${parts.map(([n, ranks]) => `${n} from ${ranks}`).join(", ")})`,
  },
};

const state = {
  lang: TEXT[localStorage.getItem(LANG_STORE)] ? localStorage.getItem(LANG_STORE) : "id",
  options: null, // ListOptions
  list: null, // the last InspectionListResponse
  caseData: null, // the ExplainResponse in the case panel
  pending: 0,
};

const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[state.lang][key] ?? key;

/** An element with text content and attributes; `children` are nodes or strings. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// -- numbers in the reader's language ------------------------------------------------------------

const locale = () => (state.lang === "id" ? "id-ID" : "en-GB");
const fmtInt = (n) => new Intl.NumberFormat(locale()).format(n);
const fmtPct = (share) =>
  new Intl.NumberFormat(locale(), { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(share);
const fmtNum = (n, digits) =>
  new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);
const fmtSigned = (n) => (n > 0 ? "+" : n < 0 ? "−" : "±") + fmtNum(Math.abs(n), 3);
const reasonText = (reason) => (state.lang === "id" ? reason.id : reason.en);

// -- messages and loading ------------------------------------------------------------------------

function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = false;
}

function clearMessage() {
  const box = $("message");
  box.textContent = "";
  box.hidden = true;
}

function setLoading(delta) {
  state.pending += delta;
  const busy = state.pending > 0;
  $("loading").hidden = !busy;
  document.body.setAttribute("aria-busy", String(busy));
  for (const id of ["sign-in", "load-list"]) $(id).disabled = busy;
}

// -- the API -------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** A JSON call with the stored key; throws ApiError on any answer but 2xx. */
async function api(path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORE) || ""}` };
  const init = { method: body === undefined ? "GET" : "POST", headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  setLoading(1);
  try {
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, { error: String(err.message || err) });
    }
    const payload = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, payload);
    return payload;
  } finally {
    setLoading(-1);
  }
}

/** Show an API failure in the message area; a rejected key sends the reader back to sign in. */
function reportError(err) {
  if (!(err instanceof ApiError)) {
    showMessage(`${t("serviceError")}: ${err}`);
    return;
  }
  const { status, body } = err;
  if (status === 401) {
    signOut();
    showMessage(t("invalidKey"));
    return;
  }
  if (status === 403) return showMessage(t("forbiddenRole"));
  const detail = Array.isArray(body.detail)
    ? body.detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ")
    : "";
  const heading = status === 0 ? t("network") : status === 404 ? t("notFound")
    : status < 500 ? t("badRequest") : t("serviceError");
  const text = [body.error, body.field ? `(${body.field})` : "", detail].filter(Boolean).join(" ");
  showMessage(text ? `${heading}: ${text}` : `${heading} (HTTP ${status})`);
}

// -- language ------------------------------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  const toggle = $("lang-toggle");
  toggle.textContent = t("otherLanguage");
  toggle.lang = state.lang === "id" ? "en" : "id";
  toggle.setAttribute("aria-label", t("otherLanguageLabel"));
  const all = $("district").querySelector('option[value=""]');
  if (all) all.textContent = t("allDistricts");
  renderDrift();
  if (state.list) renderList();
  if (state.caseData) renderCase();
}

function toggleLanguage() {
  state.lang = state.lang === "id" ? "en" : "id";
  localStorage.setItem(LANG_STORE, state.lang);
  applyLanguage();
}

// -- signing in and out --------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) return;
  clearMessage();
  sessionStorage.setItem(KEY_STORE, key);
  await openWorkspace();
}

/** Check the stored key by fetching the filter options; show the workspace if it works. */
async function openWorkspace() {
  try {
    const options = await api("/list_options");
    state.options = options;
    fillFilters(options);
    renderDrift();
    $("api-key").value = "";
    $("login").hidden = true;
    $("workspace").hidden = false;
    $("sign-out").hidden = false;
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) sessionStorage.removeItem(KEY_STORE);
    reportError(err);
  }
}

function signOut() {
  sessionStorage.removeItem(KEY_STORE);
  closeCase();
  state.options = state.list = state.caseData = null;
  renderDrift();
  $("list-table").tBodies[0].replaceChildren();
  $("list-meta").textContent = "";
  $("exploration-note").hidden = true;
  $("list-empty").hidden = false;
  $("list-empty").dataset.i18n = "noList";
  $("list-empty").textContent = t("noList");
  for (const id of ["download-csv", "download-template", "print"]) $(id).disabled = true;
  $("workspace").hidden = true;
  $("sign-out").hidden = true;
  $("login").hidden = false;
  clearMessage();
  $("api-key").focus();
}

// -- drift ---------------------------------------------------------------------------------------

/** The service's drift warning, if any, as a banner above the filters (the detail is the API's text). */
function renderDrift() {
  const banner = $("drift-banner");
  const detail = state.options ? state.options.drift_warning : null;
  banner.hidden = !detail;
  if (!detail) {
    banner.replaceChildren();
    return;
  }
  banner.replaceChildren(
    el("p", { className: "banner-text", text: t("driftWarning") }),
    el("p", { className: "banner-detail", text: `${t("driftDetail")}: ${detail}` }),
  );
}

// -- filters -------------------------------------------------------------------------------------

function fillFilters(options) {
  const asOf = $("as-of");
  asOf.min = options.first_date;
  asOf.max = options.last_date;
  if (!asOf.value || asOf.value < options.first_date || asOf.value > options.last_date) {
    // The date every continuously fed table covers: a table that runs ahead does not move the default.
    asOf.value = options.known_through || options.last_date;
  }
  const k = $("k");
  k.max = String(options.max_k);
  if (!k.value) k.value = String(options.default_k);
  const share = $("exploration-share");
  if (!share.value) share.value = String(options.default_exploration_share);
  const design = $("exploration-design");
  if (!design.dataset.chosen) design.value = options.default_exploration_design || "boundary";

  const district = $("district");
  const chosen = district.value;
  district.replaceChildren(el("option", { value: "", text: t("allDistricts") }));
  for (const code of options.districts) district.append(el("option", { value: code, text: code }));
  district.value = options.districts.includes(chosen) ? chosen : "";

  const permits = $("permit-options");
  const ticked = new Set([...permits.querySelectorAll("input:checked")].map((box) => box.value));
  permits.replaceChildren();
  options.permit_types.forEach((permit, i) => {
    const id = `permit-${i}`;
    const box = el("input", { type: "checkbox", id, name: "permit_types", value: permit });
    box.checked = ticked.has(permit);
    permits.append(el("label", { for: id, className: "check" }, box, ` ${permit}`));
  });
}

function listRequest() {
  const body = { as_of: $("as-of").value, k: Number($("k").value) };
  const district = $("district").value;
  if (district) body.district = district;
  const permits = [...$("permit-options").querySelectorAll("input:checked")].map((box) => box.value);
  if (permits.length) body.permit_types = permits;
  body.exploration_share = Number($("exploration-share").value);
  body.exploration_design = $("exploration-design").value;
  return body;
}

async function loadList(event) {
  event.preventDefault();
  if (!$("filters").reportValidity()) return;
  clearMessage();
  try {
    state.list = await api("/inspection_list", listRequest());
    renderList();
  } catch (err) {
    reportError(err);
  }
}

// -- the list ------------------------------------------------------------------------------------

function renderList() {
  const list = state.list;
  const filters = list.filters || {};
  const permits = filters.permit_types || [];
  const meta = [
    `${t("modelVersion")}: ${list.model_version}`,
    `${t("asOfShort")}: ${list.as_of}`,
    `${t("listId")}: ${list.list_id}`,
    `${t("district")}: ${filters.district || t("allDistricts")}`,
    `${t("permitTypes")}: ${permits.length ? permits.join(", ") : t("allDistricts")}`,
    `${t("eligible")}: ${fmtInt(list.cases_eligible)}`,
    `${t("split")}: ${fmtInt(list.n_model)} / ${fmtInt(list.n_exploration)}`,
    `${t("status")}: ${t(list.status || "committed")}`,
  ];
  $("list-meta").textContent = meta.join(" · ");
  const note = $("exploration-note");
  note.textContent = explorationSentence(list);
  note.hidden = !note.textContent;
  const rows = list.rows.map((row) => {
    const open = el("button", { type: "button", className: "link", text: row.person_id });
    open.setAttribute("aria-label", `${t("openCase")} ${row.person_id}`);
    open.addEventListener("click", () => openCase(row.person_id));
    const badge = el("span", {
      className: `badge ${row.selection.toLowerCase()}`,
      text: t(row.selection),
      title: `${t("propensity")}: ${fmtNum(row.propensity, 3)}`,
    });
    const reasons = el("ol", { className: "reasons" });
    for (const reason of row.reasons.slice(0, 3)) reasons.append(el("li", { text: reasonText(reason) }));
    const tr = el(
      "tr",
      { "data-person-id": row.person_id, "data-selection": row.selection },
      el("td", { className: "num", text: String(row.list_rank) }),
      el("td", {}, open),
      el("td", { className: "num", text: fmtPct(row.score) }),
      el("td", { className: "num", text: fmtInt(row.rank) }),
      el("td", { text: row.district ?? "—" }),
      el("td", { text: row.permit_type ?? "—" }),
      el("td", {}, badge),
      el("td", {}, reasons),
    );
    return tr;
  });
  $("list-table").tBodies[0].replaceChildren(...rows);
  const empty = $("list-empty");
  empty.hidden = rows.length > 0;
  empty.dataset.i18n = "emptyList";
  empty.textContent = t("emptyList");
  $("download-csv").disabled = rows.length === 0;
  $("download-template").disabled = rows.length === 0;
  $("print").disabled = false;
}

/** "5 of these 50 cases were drawn at random from ranks 46-200 ...", from the list's strata. */
function explorationSentence(list) {
  const drawn = (list.strata || []).filter((s) => s.name !== "model" && s.draws > 0);
  if (!drawn.length || !list.n_exploration) return "";
  const text = TEXT[state.lang];
  const ranks = (s) => text.ranks(fmtInt(s.first_rank), fmtInt(s.last_rank));
  const where = drawn.length === 1
    ? text.fromOne(ranks(drawn[0]))
    : text.fromMany(drawn.map((s) => [fmtInt(s.draws), ranks(s)]));
  return text.explorationSentence(fmtInt(list.n_exploration), fmtInt(list.rows.length), where);
}

// -- the case panel ------------------------------------------------------------------------------

async function openCase(personId) {
  clearMessage();
  try {
    const asOf = state.list ? state.list.as_of : $("as-of").value;
    state.caseData = await api("/explain", { person_id: personId, as_of: asOf });
    renderCase();
    const panel = $("case-panel");
    if (!panel.open) panel.showModal();
  } catch (err) {
    reportError(err);
  }
}

function closeCase() {
  const panel = $("case-panel");
  if (panel.open) panel.close();
  state.caseData = null;
}

function renderCase() {
  const c = state.caseData;
  $("case-title").textContent = `${t("caseTitle")} ${c.person_id}`;
  const summary = el("dl", { className: "summary" });
  const facts = [
    [t("score"), fmtPct(c.score)],
    [t("rank"), `${fmtInt(c.rank)} ${t("rankOf")} ${fmtInt(c.cases_total)}`],
    [t("percentile"), fmtNum(c.percentile, 1)],
    [t("asOfShort"), c.as_of],
    [t("modelVersion"), c.model_version],
    [t("baseValue"), fmtSigned(c.base_value)],
  ];
  for (const [term, value] of facts) summary.append(el("div", {}, el("dt", { text: term }), el("dd", { text: value })));

  const reasons = el("ol", { className: "reasons" });
  for (const reason of c.reasons) reasons.append(el("li", { text: reasonText(reason) }));
  if (!c.reasons.length) reasons.append(el("li", { text: t("noReasons") }));

  // Bars share one scale across the panel, so lengths compare between families.
  const largest = Math.max(1e-9, ...c.families.flatMap((f) => f.features.map((x) => Math.abs(x.contribution))));
  const families = c.families.map((family) => {
    const table = el(
      "table",
      { className: "features" },
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: t("feature") }),
        el("th", { scope: "col", text: t("value") }),
        el("th", { scope: "col", className: "num", text: t("contribution") }),
        el("th", { scope: "col", "aria-hidden": "true" }))),
    );
    const body = el("tbody");
    for (const feature of family.features) {
      const bar = el("span", { className: `bar ${feature.contribution >= 0 ? "up" : "down"}` });
      bar.style.width = `${((100 * Math.abs(feature.contribution)) / largest).toFixed(1)}%`;
      body.append(el("tr", { "data-feature": feature.name },
        el("td", { text: state.lang === "id" ? feature.id : feature.en }),
        el("td", { className: "value", text: state.lang === "id" ? feature.value_id : feature.value_en }),
        el("td", { className: "num", text: fmtSigned(feature.contribution) }),
        el("td", { className: "bar-cell", "aria-hidden": "true" }, bar)));
    }
    table.append(body);
    const heading = el("h4", {},
      el("span", { text: state.lang === "id" ? family.id : family.en }),
      el("span", { className: "family-total", text: fmtSigned(family.contribution) }));
    return el("section", { className: "family", "data-family": family.family }, heading, table);
  });

  $("case-body").replaceChildren(
    summary,
    el("h3", { text: t("reasons") }),
    reasons,
    el("h3", { text: t("families") }),
    el("p", { className: "hint", text: t("contributionNote") }),
    ...families,
  );
}

// -- CSV and print -------------------------------------------------------------------------------

const CSV_COLUMNS = [
  "list_id", "as_of", "model_version", "list_rank", "person_id", "score", "rank", "percentile",
  "district", "permit_type", "selection", "propensity", "reasons",
];

/** One CSV cell: a leading = + - @ (or tab/CR) is neutralised so spreadsheets never run it as a formula. */
function csvCell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function listCsv(list) {
  const lines = [CSV_COLUMNS.join(",")];
  for (const row of list.rows) {
    const record = {
      ...row,
      list_id: list.list_id,
      as_of: list.as_of,
      model_version: list.model_version,
      reasons: row.reasons.map(reasonText).join(" | "),
    };
    lines.push(CSV_COLUMNS.map((column) => csvCell(record[column])).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: name });
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

function downloadCsv() {
  const list = state.list;
  if (!list) return;
  const blob = new Blob([listCsv(list)], { type: "text/csv;charset=utf-8" });
  saveBlob(blob, `timpora-list-${list.as_of}-${list.list_id.slice(0, 8)}.csv`);
}

/** The committed list as an inspections file to fill in and ingest (`timpora outcomes-template`). */
async function downloadTemplate() {
  const list = state.list;
  if (!list) return;
  clearMessage();
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORE) || ""}` };
  setLoading(1);
  try {
    let response;
    try {
      response = await fetch(`/lists/${encodeURIComponent(list.list_id)}/outcomes_template`, { headers, cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, { error: String(err.message || err) });
    }
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
    saveBlob(await response.blob(), `outcomes-${list.list_id}.csv`);
  } catch (err) {
    reportError(err);
  } finally {
    setLoading(-1);
  }
}

// -- wiring --------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("lang-toggle").addEventListener("click", toggleLanguage);
  $("filters").addEventListener("submit", loadList);
  $("download-csv").addEventListener("click", downloadCsv);
  $("download-template").addEventListener("click", downloadTemplate);
  $("exploration-design").addEventListener("change", (event) => { event.target.dataset.chosen = "1"; });
  $("print").addEventListener("click", () => window.print());
  $("case-close").addEventListener("click", closeCase);
  $("case-panel").addEventListener("close", () => {
    state.caseData = null;
  });
  applyLanguage();
  if (sessionStorage.getItem(KEY_STORE)) openWorkspace();
  else $("api-key").focus();
});
