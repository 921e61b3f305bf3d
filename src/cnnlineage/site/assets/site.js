/* cnnlineage site: sorting, the collapsible layer tree, filters, search and Plotly figures.
   Every table is complete HTML without this script; it only adds interaction. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  /* ---- sort keys: "1,234" -> 1234, "64×56×56" -> 200704, "global" -> Infinity, "" -> last */
  function key(text) {
    const t = text.trim();
    if (t === "" || t === "–" || t === "-") return null;
    if (t === "global") return Infinity;
    const plain = t.replace(/,/g, "");
    if (/^[-+]?\d*\.?\d+(e[-+]?\d+)?$/i.test(plain)) return parseFloat(plain);
    if (/^\d+(×\d+)+$/.test(plain)) return plain.split("×").reduce((a, b) => a * +b, 1);
    return t.toLowerCase();
  }
  function compare(a, b) {
    if (a === b) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    if (typeof a === typeof b) return a < b ? -1 : 1;
    return typeof a === "number" ? -1 : 1;
  }

  /* ---- the layer tree: levels, collapse, depth */
  function level(tr) {
    if (tr._level === undefined) { const m = /\bl(\d+)\b/.exec(tr.className); tr._level = m ? +m[1] : 0; }
    return tr._level;
  }
  function applyTree(table) {
    if (table.classList.contains("flat")) return;
    const stack = [];
    for (const tr of table.tBodies[0].rows) {
      const l = level(tr);
      while (stack.length && stack[stack.length - 1] >= l) stack.pop();
      tr.hidden = stack.length > 0;
      const tog = tr.classList.contains("g") && tr.querySelector("button.tog");
      if (tog && tog.getAttribute("aria-expanded") === "false") stack.push(l);
    }
  }
  function setDepth(table, depth) {
    if (table.classList.contains("flat")) { // folding needs the tree: back to execution order first
      table.classList.remove("flat");
      $$("thead th", table).forEach((h) => h.removeAttribute("aria-sort"));
      (table._original || []).forEach((tr) => table.tBodies[0].appendChild(tr));
    }
    for (const tog of $$("tr.g button.tog", table)) {
      const l = level(tog.closest("tr"));
      tog.setAttribute("aria-expanded", String(l <= depth - 2));
    }
    applyTree(table);
  }

  /* ---- sortable tables */
  function makeSortable(table) {
    const body = table.tBodies[0];
    const original = Array.from(body.rows);
    table._original = original;
    const tree = table.classList.contains("tree");
    $$("thead th", table).forEach((th, col) => {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "sort";
      btn.innerHTML = th.innerHTML;
      btn.title = "Sort by this column";
      th.textContent = "";
      th.appendChild(btn);
      btn.addEventListener("click", () => {
        const dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
        $$("thead th", table).forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", dir);
        if (tree && col === 0 && dir === "ascending") { // back to execution order, as a tree
          table.classList.remove("flat");
          original.forEach((tr) => body.appendChild(tr));
          applyTree(table);
          return;
        }
        const rows = original.filter((tr) => !tr.classList.contains("g"));
        if (tree) { table.classList.add("flat"); rows.forEach((tr) => { tr.hidden = false; }); }
        const keyed = rows.map((tr, i) => [key(tr.cells[col] ? tr.cells[col].textContent : ""), i, tr]);
        keyed.sort((a, b) => (dir === "ascending" ? compare(a[0], b[0]) : -compare(a[0], b[0])) || a[1] - b[1]);
        keyed.forEach((k) => body.appendChild(k[2]));
        if (tree) original.filter((tr) => tr.classList.contains("g")).forEach((tr) => body.appendChild(tr));
      });
    });
  }
  $$("table.sortable").forEach(makeSortable);

  $$("table.tree").forEach((table) => {
    table.addEventListener("click", (ev) => {
      const tog = ev.target.closest("button.tog");
      if (!tog) return;
      tog.setAttribute("aria-expanded", tog.getAttribute("aria-expanded") === "false" ? "true" : "false");
      applyTree(table);
    });
    const sel = document.querySelector(`select[data-table="${table.id}"]`);
    if (sel) {
      sel.addEventListener("change", () => setDepth(table, +sel.value));
      if (+table.dataset.rows > 400) { sel.value = "2"; setDepth(table, 2); } // long tables open folded
    }
  });

  /* ---- Plotly figures, drawn from the JSON beside each .plot */
  const figures = {};
  $$(".plot[data-fig]").forEach((div) => {
    const src = document.getElementById(div.dataset.fig);
    if (!src) return;
    if (!window.Plotly) { div.textContent = "The plot needs assets/plotly.min.js, which did not load."; return; }
    const fig = JSON.parse(src.textContent);
    figures[div.id] = fig;
    window.Plotly.newPlot(div, fig.data, fig.layout, { responsive: true, displaylogo: false });
  });
  function filterPlot(id, visible) {
    const fig = figures[id];
    const div = document.getElementById(id);
    if (!fig || !div || !window.Plotly) return;
    const data = fig.data.map((tr) => {
      const keep = (tr.customdata || []).map((n) => visible.has(n));
      const pick = (arr) => (Array.isArray(arr) ? arr.filter((_, i) => keep[i]) : arr);
      const out = Object.assign({}, tr, { x: pick(tr.x), y: pick(tr.y), text: pick(tr.text), customdata: pick(tr.customdata) });
      if (tr.marker && Array.isArray(tr.marker.size)) out.marker = Object.assign({}, tr.marker, { size: pick(tr.marker.size) });
      return out;
    });
    window.Plotly.react(div, data, fig.layout);
  }

  /* ---- compare: filters drive the table and the plots */
  const filters = document.getElementById("filters");
  const table = document.getElementById("compare");
  if (filters && table) {
    const get = (id) => document.getElementById(id).value.trim();
    const run = () => {
      const words = get("f-text").toLowerCase().split(/\s+/).filter(Boolean);
      const fam = get("f-family"), ymin = parseFloat(get("f-ymin")), ymax = parseFloat(get("f-ymax"));
      const pmax = parseFloat(get("f-pmax"));
      const visible = new Set();
      for (const tr of table.tBodies[0].rows) {
        const d = tr.dataset, p = parseFloat(d.params), y = parseFloat(d.year);
        const ok = words.every((w) => d.text.toLowerCase().includes(w)) && (!fam || d.family === fam) &&
          !(y < ymin) && !(y > ymax) && (isNaN(pmax) || (!isNaN(p) && p <= pmax * 1e6));
        tr.hidden = !ok;
        if (ok) visible.add(d.name);
      }
      document.getElementById("f-count").textContent = `${visible.size} of ${table.tBodies[0].rows.length} models`;
      (table.dataset.filterPlots || "").split(" ").filter(Boolean).forEach((id) => filterPlot(id, visible));
    };
    filters.addEventListener("input", run);
    filters.addEventListener("change", run);
    filters.addEventListener("reset", () => setTimeout(run, 0));
  }

  /* ---- search */
  const q = document.getElementById("q");
  const list = document.getElementById("model-list");
  if (q && list) {
    const items = Array.from(list.children);
    const haystack = items.map((li) => li.dataset.search.toLowerCase());
    const run = () => {
      const words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      items.forEach((li, i) => {
        const ok = words.every((w) => haystack[i].includes(w));
        li.hidden = !ok;
        shown += ok;
      });
      document.getElementById("q-count").textContent = `${shown} of ${items.length} models`;
      document.getElementById("q-none").hidden = shown > 0;
    };
    q.addEventListener("input", run);
    const initial = new URLSearchParams(window.location.search).get("q");
    if (initial) { q.value = initial; run(); }
  }

  /* ---- lineage graph: a node's influences light up while it is hovered or focused */
  const svg = document.getElementById("lineage");
  if (svg) {
    const hot = (name, on) => $$(`.edge[data-from="${CSS.escape(name)}"], .edge[data-to="${CSS.escape(name)}"]`, svg)
      .forEach((e) => e.classList.toggle("hot", on));
    $$(".node", svg).forEach((a) => {
      for (const [ev, on] of [["mouseenter", true], ["mouseleave", false], ["focus", true], ["blur", false]]) {
        a.addEventListener(ev, () => hot(a.dataset.name, on));
      }
    });
  }
})();
