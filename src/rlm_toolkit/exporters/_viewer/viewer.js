"use strict";
(function () {
  var DATA = JSON.parse(document.getElementById("rlm-data").textContent);
  var N = DATA.names, CALLS = DATA.calls;
  var CONTENT = ["system", "in_messages", "out_messages", "code", "result"];
  var FOLD = 4000;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function get(attrs, key) {
    var names = N[key] || [];
    for (var i = 0; i < names.length; i++) if (attrs[names[i]] !== undefined) return attrs[names[i]];
    return undefined;
  }
  function num(v) { var n = Number(v); return isFinite(n) ? n : 0; }
  function fmtDur(us) {
    if (us === null || us === undefined) return "unfinished";
    if (us >= 1e6) return (us / 1e6).toFixed(2) + " s";
    if (us >= 1000) return Math.round(us / 1000) + " ms";
    return (us / 1000).toFixed(2) + " ms";
  }
  function fmtCost(c) { return c ? "$" + c.toFixed(6) : ""; }
  function fmtTok(i, o) { return i || o ? i + "→" + o + " tok" : ""; }

  // Index the spans: children in start order; a span whose parent is not in the file is a root.
  var spans = DATA.spans, byKey = {}, traces = {}, order = [];
  var maxEnd = 0, anyContent = false;
  spans.forEach(function (s, i) {
    s.i = i; s.kids = []; s.key = s.t + "/" + s.s;
    byKey[s.key] = s;
    s.op = String(get(s.a, "op") || "");
    s.err = s.c === 2 || get(s.a, "error_type") !== undefined;
    s.end = s.e === null ? null : s.e;
    if (s.e !== null && s.e > maxEnd) maxEnd = s.e;
    if (s.b > maxEnd) maxEnd = s.b;
    CONTENT.forEach(function (k) { if (get(s.a, k) !== undefined) anyContent = true; });
    s.v.forEach(function (ev) { CONTENT.forEach(function (k) { if (get(ev.a, k) !== undefined) anyContent = true; }); });
  });
  spans.forEach(function (s) {
    var parent = s.p ? byKey[s.t + "/" + s.p] : null;
    s.orphan = !!s.p && !parent;
    if (parent && parent !== s) { parent.kids.push(s); s.parent = parent; }
    else {
      if (!traces[s.t]) { traces[s.t] = { id: s.t, roots: [], spans: [] }; order.push(s.t); }
      traces[s.t].roots.push(s);
    }
  });
  function byStart(a, b) { return a.b - b.b || a.i - b.i; }
  // Totals over the subtree; tokens and cost count model calls only (a run repeats its calls' sums).
  function total(s, depth, trace) {
    s.depth = depth; s.trace = trace; trace.spans.push(s);
    s.kids.sort(byStart);
    var isCall = CALLS.indexOf(s.op) >= 0;
    s.tin = isCall ? num(get(s.a, "input")) : 0;
    s.tout = isCall ? num(get(s.a, "output")) : 0;
    s.tcost = isCall ? num(get(s.a, "cost")) : 0;
    s.tcalls = isCall ? 1 : 0;
    s.terr = s.err ? 1 : 0;
    s.retries = s.v.filter(function (e) { return (N.retry_event || []).indexOf(e.n) >= 0; }).length;
    var end = s.end === null ? s.b : s.end;
    s.kids.forEach(function (k) {
      total(k, depth + 1, trace);
      s.tin += k.tin; s.tout += k.tout; s.tcost += k.tcost; s.tcalls += k.tcalls; s.terr += k.terr;
      if (k.maxEnd > end) end = k.maxEnd;
    });
    s.maxEnd = end;
    // Siblings that overlap in time ran concurrently (llm_query_batched): marked side by side.
    for (var a = 0; a < s.kids.length; a++) for (var b = a + 1; b < s.kids.length; b++) {
      var x = s.kids[a], y = s.kids[b];
      if (y.b >= (x.end === null ? x.maxEnd : x.end)) break;
      x.par = y.par = true;
    }
  }
  var traceList = order.map(function (id) {
    var t = traces[id];
    t.roots.sort(byStart);
    t.roots.forEach(function (r) { total(r, 0, t); });
    t.start = Math.min.apply(null, t.roots.map(function (r) { return r.b; }));
    t.end = Math.max.apply(null, t.roots.map(function (r) { return r.maxEnd; }));
    ["tin", "tout", "tcost", "tcalls", "terr"].forEach(function (k) {
      t[k] = t.roots.reduce(function (acc, r) { return acc + r[k]; }, 0);
    });
    var named = t.roots.filter(function (r) { return !r.orphan; })[0] || t.roots[0];
    t.name = (named.r && named.r.indexOf("unknown_service") !== 0 ? named.r + ": " : "") + named.n;
    return t;
  });

  document.getElementById("summary").textContent =
    spans.length + " spans · " + traceList.length + " trace" + (traceList.length === 1 ? "" : "s");
  if (!anyContent && spans.length) {
    var banner = document.getElementById("banner");
    banner.hidden = false;
    banner.textContent = "Content was not captured in this file: prompts, completions, code and REPL output are absent " +
      "(run with rlm-instrument --capture-content true to record them). Timings, tokens and costs are shown.";
  }

  var treeBox = document.getElementById("tree"), details = document.getElementById("details");
  var current = null, selected = null, open = {}, rows = {}, limit = {}, PAGE = 200;

  function renderTraces() {
    var box = document.getElementById("traces");
    box.textContent = "";
    traceList.forEach(function (t) {
      var item = el("div", "trace" + (t === current ? " sel" : ""));
      item.dataset.traceId = t.id;
      item.appendChild(el("div", "name", t.name));
      var line = el("div", "muted", fmtDur(t.end - t.start) + " · " + t.spans.length + " spans");
      item.appendChild(line);
      item.appendChild(el("div", "muted", [fmtTok(t.tin, t.tout), fmtCost(t.tcost)].filter(Boolean).join(" · ")));
      if (t.terr) item.appendChild(el("span", "badge err", t.terr + " error" + (t.terr > 1 ? "s" : "")));
      else item.appendChild(el("span", "badge", "ok"));
      item.addEventListener("click", function () { showTrace(t, null); });
      box.appendChild(item);
    });
  }

  function makeRow(s) {
    var t = s.trace, span = Math.max(t.end - t.start, 1);
    var row = el("div", "row" + (s.err ? " err" : "") + (s === selected ? " sel" : ""));
    row.dataset.spanId = s.s;
    row.dataset.depth = s.depth;
    var label = el("div", "label");
    label.style.paddingLeft = (s.depth * 14) + "px";
    label.appendChild(el("span", "tog", s.kids.length ? (open[s.key] ? "▾" : "▸") : ""));
    label.appendChild(el("span", "name", s.n));
    var model = get(s.a, "model");
    if (model && s.n.indexOf(model) < 0) label.appendChild(el("span", "badge", model));
    if (s.err) label.appendChild(el("span", "badge err", "error"));
    if (s.retries) label.appendChild(el("span", "badge", "↻ " + s.retries));
    if (s.par) label.appendChild(el("span", "badge par", "∥ concurrent"));
    if (s.orphan) label.appendChild(el("span", "badge", "parent not in file"));
    if (s.end === null) label.appendChild(el("span", "badge", "unfinished"));
    var lane = el("div", "lane"), bar = el("div", "bar op-" + s.op + (s.err ? " err" : "") + (s.end === null ? " open" : ""));
    var stop = s.end === null ? s.maxEnd : s.end;
    bar.style.left = ((s.b - t.start) / span * 100) + "%";
    bar.style.width = (Math.max(stop - s.b, 0) / span * 100) + "%";
    lane.appendChild(bar);
    row.appendChild(label);
    row.appendChild(lane);
    row.appendChild(el("div", "num dur", s.end === null ? "unfinished" : fmtDur(s.end - s.b)));
    row.appendChild(el("div", "num tot-tokens", fmtTok(s.tin, s.tout)));
    row.appendChild(el("div", "num tot-cost", fmtCost(s.tcost)));
    row.addEventListener("click", function (ev) {
      if (s.kids.length && (ev.target.classList.contains("tog") || s === selected)) toggle(s);
      select(s);
    });
    rows[s.key] = row;
    return row;
  }
  // Only expanded nodes have rows, so a 10,000-span trace costs what is visible.
  function renderTree() {
    treeBox.textContent = "";
    rows = {};
    if (!current) return;
    var frag = document.createDocumentFragment();
    var head = el("div", "row");
    ["step", "timeline", "duration", "tokens (subtree)", "cost (subtree)"].forEach(function (h) { head.appendChild(el("div", "muted", h)); });
    frag.appendChild(head);
    var stack = pushKids(null, { key: "", kids: current.roots }, []);
    while (stack.length) {
      var s = stack.pop();
      if (s.more) { frag.appendChild(moreRow(s)); continue; }
      frag.appendChild(makeRow(s));
      if (open[s.key]) pushKids(stack, s, stack);
    }
    treeBox.appendChild(frag);
  }
  // At most PAGE children of a node get rows until the user asks for more.
  function pushKids(_unused, s, stack) {
    var shown = Math.min(s.kids.length, limit[s.key] || PAGE);
    if (shown < s.kids.length) stack.push({ more: s, depth: (s.depth === undefined ? -1 : s.depth) + 1, shown: shown });
    for (var k = shown - 1; k >= 0; k--) stack.push(s.kids[k]);
    return stack;
  }
  function moreRow(m) {
    var row = el("div", "row more");
    var label = el("div", "label", "… " + (m.more.kids.length - m.shown) + " more steps (show " + PAGE + " more)");
    label.style.paddingLeft = (m.depth * 14 + 14) + "px";
    row.appendChild(label);
    row.addEventListener("click", function () { limit[m.more.key] = m.shown + PAGE; renderTree(); });
    return row;
  }
  function toggle(s) { open[s.key] = !open[s.key]; renderTree(); }

  function section(title) { details.appendChild(el("h3", null, title)); }
  function textBlock(text, part) {
    var str = typeof text === "string" ? text : JSON.stringify(text, null, 2);
    if (typeof text === "string" && /^\s*[\[{]/.test(text)) {
      try { str = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { str = text; }
    }
    var pre = el("pre", null, str.length > FOLD ? str.slice(0, FOLD) : str);
    pre.dataset.part = part;
    if (str.length > FOLD) {
      var more = el("details");
      more.appendChild(el("summary", null, "show all " + str.length + " characters"));
      more.addEventListener("toggle", function () { pre.textContent = more.open ? str : str.slice(0, FOLD); });
      details.appendChild(pre);
      details.appendChild(more);
    } else details.appendChild(pre);
  }
  function select(s) {
    if (selected && rows[selected.key]) rows[selected.key].classList.remove("sel");
    selected = s;
    if (rows[s.key]) rows[s.key].classList.add("sel");
    details.textContent = "";
    details.dataset.spanId = s.s;
    details.appendChild(el("h2", null, s.n));
    details.appendChild(el("div", "muted", fmtDur(s.end === null ? null : s.end - s.b) + " · span " + s.s + (s.p ? " · parent " + s.p : "")));
    var exceptions = s.v.filter(function (e) { return e.n === "exception" || /exception/.test(e.n); });
    if (s.err || exceptions.length) {
      section("Error");
      var box = el("div", "exc");
      box.dataset.part = "error";
      if (s.m) box.appendChild(el("div", null, s.m));
      var et = get(s.a, "error_type");
      if (et !== undefined) box.appendChild(el("div", null, "error.type: " + et));
      details.appendChild(box);
      exceptions.forEach(function (e) {
        var line = (e.a["exception.type"] || e.n) + ": " + (e.a["exception.message"] || "");
        details.appendChild(el("div", "exc", line));
        if (e.a["exception.stacktrace"]) textBlock(String(e.a["exception.stacktrace"]), "stacktrace");
      });
    }
    section("Subtree totals");
    details.appendChild(el("div", "totals", s.tcalls + (s.tcalls === 1 ? " model call · " : " model calls · ") + s.tin + " in / " + s.tout + " out tokens" +
      (s.tcost ? " · " + fmtCost(s.tcost) : "") + (s.terr ? " · " + s.terr + " errors" : "")));
    var shown = false;
    [["system", "System instructions"], ["in_messages", "Input messages"], ["code", "Code"],
     ["result", "Output"], ["out_messages", "Output messages"]].forEach(function (pair) {
      var v = get(s.a, pair[0]);
      if (v === undefined) return;
      shown = true; section(pair[1]); textBlock(v, pair[0]);
    });
    if (!shown && (CALLS.indexOf(s.op) >= 0 || s.op === "execute_tool" || s.op === "invoke_agent")) {
      var note = el("p", "muted", "Content was not captured for this step (only timings, tokens and attributes were recorded).");
      note.dataset.part = "content-missing";
      details.appendChild(note);
    }
    section("Attributes");
    var table = el("table", "attrs");
    Object.keys(s.a).sort().forEach(function (k) {
      if (CONTENT.some(function (c) { return (N[c] || []).indexOf(k) >= 0; })) return;
      var tr = el("tr");
      tr.appendChild(el("td", null, k));
      var v = s.a[k];
      tr.appendChild(el("td", null, typeof v === "string" ? v : JSON.stringify(v)));
      table.appendChild(tr);
    });
    details.appendChild(table);
    var others = s.v.filter(function (e) { return exceptions.indexOf(e) < 0; });
    if (others.length) {
      section("Events");
      others.forEach(function (e) {
        details.appendChild(el("div", null, e.n + (e.b !== null ? " at +" + fmtDur(e.b - s.b) : "")));
        if (Object.keys(e.a).length) textBlock(e.a, "event");
      });
    }
  }

  function showTrace(t, focus) {
    current = t; open = {}; limit = {};
    var small = t.spans.length <= 300;
    t.spans.forEach(function (s) { if (small || s.depth < 1) open[s.key] = true; });
    for (var p = focus ? focus.parent : null, c = focus; p; c = p, p = p.parent) {
      open[p.key] = true;
      var at = p.kids.indexOf(c);
      if (at >= PAGE) limit[p.key] = at + 1;
    }
    renderTraces();
    renderTree();
    select(focus || t.roots[0]);
    if (rows[selected.key]) rows[selected.key].scrollIntoView({ block: "nearest" });
  }
  // A failed run opens on its failure: the deepest failing step of the first trace with errors.
  function failure(t) {
    var worst = null;
    t.spans.forEach(function (s) { if (s.err && (!worst || s.depth > worst.depth)) worst = s; });
    return worst;
  }
  var first = traceList.filter(function (t) { return t.terr; })[0] || traceList[0];
  if (first) showTrace(first, failure(first));
  else details.textContent = "This file has no spans.";
  window.rlmViewer = { traces: traceList.length, spans: spans.length, loadMs: performance.now(), ready: true };
})();
