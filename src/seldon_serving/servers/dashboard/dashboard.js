// The live dashboard: one JSON snapshot a second from /dashboard/events (server-sent events),
// drawn as plain DOM (names are text, for screen readers and tests).  No library, no build step.
"use strict";

(function () {
  const main = document.getElementById("deployments");
  const status = document.getElementById("status");
  let source = null;
  let payloads = false;  // the server shows payloads (--dashboard-payloads)

  // h("td", {class: "x"}, "text", child...): an element; strings become text nodes, never HTML.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) el.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return el;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  }

  function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%"; }
  function ms(x) { return x === null || x === undefined ? "–" : (x < 10 ? x.toFixed(2) : x.toFixed(0)) + " ms"; }
  function rate(x) { return x === null || x === undefined ? "–" : x.toFixed(1) + "/s"; }
  function num(x, d) { return x === null || x === undefined ? "–" : Number(x).toFixed(d === undefined ? 3 : d); }

  function stat(label, value, field) {
    return h("span", {class: "stat", "data-field": field}, h("span", {class: "label"}, label + " "), h("b", {}, value));
  }

  function statsLine(st, field) {
    st = st || {};
    return h("div", {class: "stats"},
      stat("req", String(st.requests === undefined ? "–" : st.requests), field + "-requests"),
      stat("rate", rate(st.rps), field + "-rps"),
      stat("p50", ms(st.p50_ms), field + "-p50"),
      stat("p99", ms(st.p99_ms), field + "-p99"),
      stat("err", pct(st.error_rate), field + "-errors"));
  }

  // A graph as nested boxes: each level a row of children under its parent; edges drawn after layout.
  function nodeBox(node, predictor, shares, showNodeStats) {
    const box = h("div", {class: "node how-" + node.how, "data-node": node.name, role: "group",
                          "aria-label": "node " + node.name},
      h("div", {class: "node-name"}, node.name),
      h("div", {class: "node-type"}, String(node.type || "").toLowerCase()),
      h("div", {class: "node-how", title: node.runs}, node.how + (node.runs ? " · " + node.runs : "")),
      showNodeStats ? statsLine(node.stats, "node-" + predictor + "-" + node.name) : null);
    const kids = node.children || [];
    const wrap = h("div", {class: "subtree"}, box);
    if (kids.length) {
      const row = h("div", {class: "children"});
      kids.forEach((child, i) => {
        const sub = nodeBox(child, predictor, shares, showNodeStats);
        const share = shares[node.name] ? shares[node.name][child.name] : undefined;
        sub.setAttribute("data-parent", node.name);
        if (share !== undefined) sub.setAttribute("data-share", pct(share));
        row.appendChild(sub);
      });
      wrap.appendChild(row);
    }
    return wrap;
  }

  function drawEdges(graph) {
    const old = graph.querySelector("svg.edges");
    if (old) old.remove();
    const area = graph.getBoundingClientRect();
    const svg = s("svg", {class: "edges", width: area.width, height: area.height, "aria-hidden": "true"});
    graph.querySelectorAll(".subtree[data-parent]").forEach((sub) => {
      const parent = sub.parentElement.parentElement.querySelector(":scope > .node");
      const child = sub.querySelector(":scope > .node");
      if (!parent || !child) return;
      const a = parent.getBoundingClientRect(), b = child.getBoundingClientRect();
      const x1 = a.left + a.width / 2 - area.left, y1 = a.bottom - area.top;
      const x2 = b.left + b.width / 2 - area.left, y2 = b.top - area.top;
      svg.appendChild(s("path", {d: `M${x1},${y1} C${x1},${(y1 + y2) / 2} ${x2},${(y1 + y2) / 2} ${x2},${y2}`}));
      const share = sub.getAttribute("data-share");
      if (share) {
        const t = s("text", {x: (x1 + x2) / 2 + 4, y: (y1 + y2) / 2});
        t.textContent = share;
        svg.appendChild(t);
      }
    });
    graph.prepend(svg);
  }

  function table(caption, head, rows, cls) {
    return h("table", {class: cls || ""},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, head.map((c) => h("th", {scope: "col"}, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
  }

  function shareBar(x) {
    const bar = h("span", {class: "bar"}, h("span", {class: "fill"}));
    bar.firstChild.style.width = x ? (100 * x).toFixed(1) + "%" : "0";
    return h("span", {}, bar, " " + pct(x));
  }

  function sparkline(series) {
    const w = 240, hgt = 48;
    const svg = s("svg", {class: "spark", width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, role: "img",
                          "aria-label": "outlier rate over the last minutes"});
    const pts = series.filter((p) => p[1] !== null);
    if (pts.length) {
      const t0 = Math.min(...pts.map((p) => p[0]), -20);
      const top = Math.max(0.05, ...pts.map((p) => p[1]));
      const xy = pts.map((p) => `${((p[0] - t0) / (0 - t0)) * (w - 4) + 2},${hgt - 2 - (p[1] / top) * (hgt - 4)}`);
      svg.appendChild(s("polyline", {points: xy.join(" ")}));
      const [x, y] = xy[xy.length - 1].split(",");
      svg.appendChild(s("circle", {cx: x, cy: y, r: 2.5}));  // the latest point (alone at first)
    }
    return svg;
  }

  function deploymentSection(d, nodeMetrics) {
    const id = d.namespace + "/" + d.name;
    const sec = h("section", {class: "deployment", "data-deployment": id, "aria-label": "deployment " + d.name},
      h("h2", {}, h("span", {class: "dep-name"}, d.name), " ",
        h("span", {class: "ns"}, d.namespace), " ",
        h("span", {class: "state state-" + d.state}, d.state || "")));
    // Branch shares of each router, for the edges' labels.
    const sharesByPredictor = {};
    for (const exp of d.experiments) {
      if (exp.kind !== "router") continue;
      const m = (sharesByPredictor[exp.predictor] = sharesByPredictor[exp.predictor] || {});
      m[exp.node] = {};
      for (const b of exp.branches) m[exp.node][b.branch] = b.recent_share !== null && b.recent_share !== undefined ? b.recent_share : b.share;
    }
    for (const p of d.predictors) {
      const traffic = p.shadow ? "shadow" : (p.traffic === null || p.traffic === undefined ? "" : p.traffic + "% of traffic");
      const graph = h("div", {class: "graph"}, nodeBox(p.graph, p.name, sharesByPredictor[p.name] || {}, nodeMetrics));
      sec.appendChild(h("div", {class: "predictor", "data-predictor": p.name},
        h("h3", {}, "predictor ", h("span", {class: "pred-name"}, p.name), " ", h("span", {class: "traffic"}, traffic)),
        statsLine(p.stats, "predictor-" + p.name),
        graph));
    }
    for (const exp of d.experiments) {
      const what = exp.kind === "traffic" ? "Traffic split per predictor" : `Router ${exp.node} (${exp.predictor}) per branch`;
      sec.appendChild(table(what, ["branch", "requests", "share", "now", "rate", "errors", "feedback", "reward mean"],
        exp.branches.map((b) => [b.branch, String(b.requests), shareBar(b.share), pct(b.recent_share), rate(b.rps),
          pct(b.error_rate), String(b.feedback === null || b.feedback === undefined ? "–" : b.feedback), num(b.reward_mean)]),
        "split"));
    }
    for (const b of d.bandits) {
      sec.appendChild(table(`Bandit ${b.node} (${b.router || "router"})`, ["arm", "tries", "reward mean", "share of requests", "requests"],
        b.arms.map((a) => [a.name, h("span", {class: "tries"}, String(a.tries)), num(a.reward_mean),
          h("span", {class: "share"}, shareBar(a.share)), String(a.requests === null ? "–" : a.requests)]),
        "bandit"));
    }
    for (const det of d.detectors) {
      sec.appendChild(h("div", {class: "detector", "data-detector": det.node},
        h("h4", {}, "Detector ", det.node),
        h("p", {}, stat("observations", String(det.observations), "det-obs"), " ",
          stat("outliers", String(det.outliers), "det-out"), " ",
          stat("outlier rate", pct(det.outlier_rate), "det-rate"), " ",
          stat("threshold", num(det.threshold, 2), "det-threshold")),
        h("div", {class: "spark-caption"}, "outlier rate, every 2 s (top: ", pct(Math.max(0.05, ...det.series.filter((p) => p[1] !== null).map((p) => p[1]))), ")"),
        sparkline(det.series)));
    }
    if (d.recent.length) {
      sec.appendChild(table("Recent requests" + (payloads ? "" : " (payloads redacted: --dashboard-payloads shows them)"),
        ["time", "type", "node", "request id", "payload"],
        d.recent.slice(0, 10).map((e) => [String(e.time || "").slice(11, 23), String(e.type || "").replace("io.seldon.serving.inference.", ""),
          String(e.modelid || ""), h("span", {class: "request-id"}, String(e.requestid || "")),
          e.data === null || e.data === undefined ? h("i", {}, "redacted") : h("code", {}, e.data)]),
        "recent"));
    }
    return sec;
  }

  function render(snap) {
    payloads = snap.payloads;
    // A deployment whose data did not change keeps its elements (a reader's place, a selection).
    const kept = {};
    main.querySelectorAll(":scope > section.deployment").forEach((sec) => { kept[sec.dataset.deployment] = sec; });
    const sections = [];
    const fresh = [];
    for (const d of snap.deployments) {
      const sig = JSON.stringify(d) + snap.node_metrics + payloads;
      const old = kept[d.namespace + "/" + d.name];
      if (old && old.dataset.sig === sig) { sections.push(old); continue; }
      const sec = deploymentSection(d, snap.node_metrics);
      sec.dataset.sig = sig;
      sections.push(sec);
      fresh.push(sec);
    }
    if (!sections.length) sections.push(h("p", {}, "No deployment: apply one with `seldon apply -f FILE`."));
    main.replaceChildren(...sections);
    main.setAttribute("aria-busy", "false");
    fresh.forEach((sec) => sec.querySelectorAll(".graph").forEach(drawEdges));
    status.textContent = "live · updated " + new Date(snap.time * 1000).toLocaleTimeString();
    status.className = "live";
  }

  function connect() {
    source = new EventSource("/dashboard/events");
    source.onmessage = (ev) => {
      const snap = JSON.parse(ev.data);
      if (snap.error) { status.textContent = "snapshot failed: " + snap.error; return; }
      render(snap);
    };
    // The server ends each stream after a few seconds (a stopping server waits for none): reopen.
    source.addEventListener("bye", () => { source.close(); connect(); });
    source.onerror = () => { status.textContent = "disconnected: retrying…"; status.className = "down"; };
  }

  window.addEventListener("resize", () => main.querySelectorAll(".graph").forEach(drawEdges));
  connect();
})();
