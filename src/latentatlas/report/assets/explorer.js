// The report's latent explorers. Plotly draws the points with WebGL (scattergl); this script decodes the
// packed data (16-bit coordinates, neighbour tables, one sprite image of every thumbnail) and wires hover,
// click-for-neighbours, search, box/lasso selection and the projection switch. It reads nothing but the page.
(function () {
  "use strict";
  performance.mark("latentatlas-script");
  var RING = "ring", MATCHES = "matches", POINTS = "points";

  function bytes(b64) {
    var bin = atob(b64), n = bin.length, out = new Uint8Array(n);
    for (var i = 0; i < n; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c];
    });
  }
  function fmtInt(v) { return v.toLocaleString("en-US"); }

  // Each explorer is drawn by a call right after its markup, before the rest of the page is parsed.
  var pending = null;
  window.latentatlas = {explorers: {}, explorer: function (id) {
    if (pending === null) {
      var meta = document.querySelector('meta[name="latentatlas-explorers"]');
      pending = meta ? +meta.content : 1;
    }
    setup(document.getElementById(id));
  }};
  function whenParsed(f) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", f);
    else f();
  }

  function setup(box) {
    var D = JSON.parse(document.getElementById(box.id + "-data").textContent);
    var n = D.n_points, K = D.k, isImages = D.kind === "images";
    var index = new Int32Array(bytes(D.index));
    var inv = new Int32Array(D.n_total).fill(-1);
    for (var i = 0; i < n; i++) inv[index[i]] = i;
    // Neighbour tables and the other projections sit at the end of the page; read when first needed.
    var later = null, nb = null, dist = null;
    function more() {
      if (!later) {
        later = JSON.parse(document.getElementById(box.id + "-later").textContent);
        nb = new Int32Array(bytes(later.neighbours));
        dist = new Uint16Array(bytes(later.distances));
      }
      return later;
    }
    var groupOf = D.groups ? new Int16Array(bytes(D.groups.of)) : null;
    var plot = box.querySelector(".plot"), aside = box.querySelector("aside");
    var hoverImg = box.querySelector(".hover-img"), hoverText = box.querySelector(".hover-text");
    var nnTitle = box.querySelector(".nn-title"), nnList = box.querySelector(".nn-list");
    var selBox = box.querySelector(".selection"), matchList = box.querySelector(".matches");
    var countEl = box.querySelector(".count");
    var sprite = null, spriteGeo = D.sprite || null;
    var state = {projection: 0, clicked: -1, selected: null, matches: null, hoverAt: 0, hovered: -1};

    // --- coordinates, decoded lazily per projection ------------------------------------------------------
    var decoded = {};
    function coords(p) {
      if (decoded[p]) return decoded[p];
      var P = D.projections[p], q = new Uint16Array(bytes(p === 0 ? P.xy : more().projections[p - 1])), x = new Float32Array(n), y = new Float32Array(n);
      var sx = P.span[0] / 65535, sy = P.span[1] / 65535;
      for (var i = 0; i < n; i++) { x[i] = P.lo[0] + q[2 * i] * sx; y[i] = P.lo[1] + q[2 * i + 1] * sy; }
      return (decoded[p] = {x: x, y: y});
    }

    // --- traces: one per group (the legend filters groups), or one coloured trace --------------------------
    var members = [], traceOf = new Int32Array(n), posIn = new Int32Array(n);
    function addMembers(list) {
      var m = new Int32Array(list.length);
      for (var j = 0; j < list.length; j++) { m[j] = list[j]; traceOf[list[j]] = members.length; posIn[list[j]] = j; }
      members.push(m);
    }
    var colourVals = null, colourMissing = [];
    if (groupOf) {
      var lists = D.groups.names.map(function () { return []; });
      for (i = 0; i < n; i++) lists[groupOf[i]].push(i);
      lists.forEach(addMembers);
    } else {
      var present = [];
      if (D.colour) {
        var cq = new Uint16Array(bytes(D.colour.values));
        colourVals = new Float32Array(n);
        for (i = 0; i < n; i++) {
          if (cq[i] === 65535) colourMissing.push(i);
          else { present.push(i); colourVals[i] = D.colour.lo + cq[i] / 65534 * (D.colour.hi - D.colour.lo); }
        }
      } else { for (i = 0; i < n; i++) present.push(i); }
      addMembers(present);
      if (colourMissing.length) addMembers(colourMissing);
    }
    // Marker size and opacity shrink with the number of points so that 70,000 still show dense cores.
    var size = n <= 2000 ? 6 : Math.max(2.5, 6 * Math.pow(2000 / n, 0.25));
    var opacity = n <= 2000 ? 0.8 : Math.max(0.3, 0.8 * Math.pow(2000 / n, 0.3));

    function subset(arr, m) {
      var out = new Float32Array(m.length);
      for (var j = 0; j < m.length; j++) out[j] = arr[m[j]];
      return out;
    }
    function traces(p) {
      var c = coords(p), data = [];
      members.forEach(function (m, t) {
        var tr = {type: "scattergl", mode: "markers", x: subset(c.x, m), y: subset(c.y, m), meta: POINTS,
                  hoverinfo: "none", marker: {size: size, opacity: opacity}};
        if (groupOf) {
          tr.name = D.groups.names[t];
          tr.marker.color = D.groups.colours[t];
        } else if (t === 1) {
          tr.name = "no value"; tr.marker.color = "#bbbbbb";
        } else {
          tr.name = isImages ? "images" : "items"; tr.showlegend = false;
          if (colourVals) {
            tr.marker.color = subset(colourVals, m);
            tr.marker.colorscale = "Viridis"; tr.marker.cmin = D.colour.lo; tr.marker.cmax = D.colour.hi;
            tr.marker.showscale = true; tr.marker.colorbar = {title: {text: D.colour.title, side: "right"}};
          } else { tr.marker.color = "#1f77b4"; }
        }
        data.push(tr);
      });
      data.push({type: "scattergl", mode: "markers", x: [], y: [], meta: MATCHES, name: "search matches",
                 hoverinfo: "skip", showlegend: false,
                 marker: {size: 11, color: "rgba(0,0,0,0)", line: {width: 1.5, color: "#ff00aa"}}});
      data.push({type: "scatter", mode: "markers", x: [], y: [], meta: RING, name: "neighbours", hoverinfo: "skip",
                 showlegend: false, marker: {size: 14, color: "rgba(0,0,0,0)", line: {width: 2, color: []}}});
      return data;
    }

    // --- labels ------------------------------------------------------------------------------------------
    function label(src) {              // src: a source row (embedding row or model item)
      if (isImages) {
        var d = inv[src], g = d >= 0 && groupOf ? groupOf[d] : -1;
        return "#" + src + (g >= 0 ? " · " + D.groups.names[g] : "");
      }
      var name = D.names ? D.names[src] : "";
      return "item " + D.ids[src] + (name ? " · " + name : "");
    }
    var searchText = null;
    function searchable() {
      if (searchText) return searchText;
      searchText = new Array(n);
      for (var i = 0; i < n; i++) searchText[i] = label(index[i]).toLowerCase();
      return searchText;
    }

    // --- thumbnails from the sprite ---------------------------------------------------------------------
    function drawThumb(ctx, d, dx, dy, w, h) {
      if (!sprite || d < 0) return false;
      var G = spriteGeo;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(sprite, (d % G.cols) * G.cell_w, Math.floor(d / G.cols) * G.cell_h, G.cell_w, G.cell_h,
                    dx, dy, w, h);
      return true;
    }
    function thumbCanvas(d, px) {
      var c = document.createElement("canvas");
      c.width = spriteGeo.cell_w; c.height = spriteGeo.cell_h;
      c.style.width = px + "px"; c.style.height = px + "px";
      c.setAttribute("data-point", d);
      drawThumb(c.getContext("2d"), d, 0, 0, c.width, c.height);
      return c;
    }

    // --- hover, click, neighbours -----------------------------------------------------------------------
    function show(d) {
      state.hovered = d;
      var src = index[d], text = label(src);
      if (!isImages && D.extra) text += " · " + D.extra[src];
      hoverText.textContent = text;
      if (hoverImg) {
        hoverImg.width = spriteGeo.cell_w; hoverImg.height = spriteGeo.cell_h;
        var ok = drawThumb(hoverImg.getContext("2d"), d, 0, 0, spriteGeo.cell_w, spriteGeo.cell_h);
        hoverImg.classList.toggle("empty", !ok);
        hoverImg.setAttribute("data-point", ok ? d : -1);
      }
      state.hoverAt = performance.now();
      box.setAttribute("data-hovered", d);
    }
    function xyOf(d) {
      var t = traceOf[d], tr = plot.data[t];
      return [tr.x[posIn[d]], tr.y[posIn[d]]];
    }
    function ring() {
      var t = plot.data.length - 1, xs = [], ys = [], colours = [];
      if (state.clicked >= 0) {
        var d = state.clicked, all = [d];
        for (var j = 0; j < K; j++) {
          var s = nb[d * K + j];
          if (s >= 0 && inv[s] >= 0) all.push(inv[s]);
        }
        all.forEach(function (e, m) {
          var p = xyOf(e);
          xs.push(p[0]); ys.push(p[1]); colours.push(m === 0 ? "#d62728" : "#111111");
        });
      }
      var mx = [], my = [];
      if (state.matches) state.matches.slice(0, 2000).forEach(function (e) {
        var p = xyOf(e); mx.push(p[0]); my.push(p[1]);
      });
      return Plotly.restyle(plot, {x: [mx, xs], y: [my, ys], "marker.line.color": ["#ff00aa", colours]},
                            [t - 1, t]);
    }
    function neighbours(d) {
      if (document.readyState === "loading") { whenParsed(function () { neighbours(d); }); return; }
      more();
      state.clicked = d;
      nnTitle.textContent = "Nearest to " + label(index[d]) + ":";
      nnList.innerHTML = "";
      for (var j = 0; j < K; j++) {
        var s = nb[d * K + j];
        if (s < 0) continue;
        var li = document.createElement("li"), dd = dist[d * K + j] * D.distance_scale, e = inv[s];
        li.setAttribute("data-source", s);
        if (isImages) {
          li.appendChild(thumbCanvas(e, 56));
          li.appendChild(document.createTextNode(label(s)));
          li.appendChild(document.createElement("br"));
          li.appendChild(document.createTextNode("d=" + dd.toFixed(3)));
        } else {
          li.textContent = label(s) + " (cos " + (1 - dd).toFixed(3) + ")";
        }
        if (e >= 0) li.addEventListener("click", (function (e) { return function () { show(e); neighbours(e); }; })(e));
        nnList.appendChild(li);
      }
      nnList.setAttribute("data-point", d);
      return ring();
    }

    // --- selection (box or lasso), kept across projections ------------------------------------------------
    var GRID_MAX = 400;
    function showSelection() {
      selBox.innerHTML = "";
      var sel = state.selected;
      box.setAttribute("data-selected", sel ? sel.length : 0);
      if (!sel || !sel.length) return;
      var head = document.createElement("div");
      head.className = "sel-title";
      head.textContent = fmtInt(sel.length) + " selected" +
        (sel.length > GRID_MAX ? " (the first " + GRID_MAX + " shown)" : "") + ":";
      selBox.appendChild(head);
      var shown = sel.slice(0, GRID_MAX);
      if (isImages && sprite) {
        var cols = 9, G = spriteGeo, c = document.createElement("canvas");
        c.className = "grid";
        c.width = cols * G.cell_w; c.height = Math.ceil(shown.length / cols) * G.cell_h;
        var ctx = c.getContext("2d");
        shown.forEach(function (d, j) { drawThumb(ctx, d, (j % cols) * G.cell_w, Math.floor(j / cols) * G.cell_h, G.cell_w, G.cell_h); });
        c.setAttribute("data-cells", shown.length);
        selBox.appendChild(c);
      } else {
        var ul = document.createElement("ul");
        shown.forEach(function (d) { var li = document.createElement("li"); li.textContent = label(index[d]); ul.appendChild(li); });
        selBox.appendChild(ul);
      }
    }
    function selectedPoints() {
      if (!state.selected) return members.map(function () { return null; });
      var per = members.map(function () { return []; });
      state.selected.forEach(function (d) { per[traceOf[d]].push(posIn[d]); });
      return per;
    }

    // --- projection switch ------------------------------------------------------------------------------
    function project(p) {
      if (document.readyState === "loading") return new Promise(function (ok) { whenParsed(function () { ok(project(p)); }); });
      state.projection = p;
      var c = coords(p), xs = [], ys = [], idx = [];
      members.forEach(function (m, t) { xs.push(subset(c.x, m)); ys.push(subset(c.y, m)); idx.push(t); });
      box.querySelectorAll(".proj").forEach(function (b, j) { b.classList.toggle("active", j === p); });
      // A drawn selection outline belongs to the old positions; the selected points themselves are kept.
      state.switching = true;   // clearing the outline fires plotly_deselect, which must not drop the selection
      return Plotly.relayout(plot, {selections: [], "xaxis.autorange": true, "yaxis.autorange": true})
        .then(function () { return Plotly.restyle(plot, {x: xs, y: ys, selectedpoints: selectedPoints()}, idx); })
        .then(function () { state.switching = false; }, function (e) { state.switching = false; throw e; })
        .then(ring)
        .then(function () { box.setAttribute("data-projection", D.projections[p].key); });
    }

    // --- search -----------------------------------------------------------------------------------------
    function search(q) {
      q = q.replace(/^\s+/, "").toLowerCase();    // a trailing space is kept: "#12 " matches #12 and not #123
      matchList.innerHTML = "";
      if (!q.trim()) { state.matches = null; box.setAttribute("data-matches", 0); return ring(); }
      var texts = searchable(), found = [];
      for (var i = 0; i < n; i++) if (texts[i].indexOf(q) >= 0) found.push(i);
      state.matches = found;
      box.setAttribute("data-matches", found.length);
      var head = document.createElement("li");
      head.textContent = fmtInt(found.length) + " match" + (found.length === 1 ? "" : "es") +
        (found.length > 50 ? " (first 50 listed, 2,000 ringed)" : "");
      matchList.appendChild(head);
      found.slice(0, 50).forEach(function (d) {
        var li = document.createElement("li");
        li.textContent = label(index[d]);
        li.addEventListener("click", function () { show(d); neighbours(d); });
        matchList.appendChild(li);
      });
      return ring();
    }

    // --- build ------------------------------------------------------------------------------------------
    var bar = box.querySelector(".toolbar");
    if (D.projections.length > 1) {
      var lab = document.createElement("span"); lab.textContent = "projection:"; bar.appendChild(lab);
      D.projections.forEach(function (P, p) {
        var b = document.createElement("button");
        b.type = "button"; b.className = "proj" + (p === 0 ? " active" : ""); b.textContent = P.name;
        b.setAttribute("data-key", P.key);
        b.addEventListener("click", function () { project(p); });
        bar.appendChild(b);
      });
    }
    var input = document.createElement("input");
    input.type = "search"; input.className = "search";
    input.placeholder = isImages ? "search: #index or class" : "search: item id or name";
    var timer = null;
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(function () { search(input.value); }, 150); });
    bar.appendChild(input);
    countEl.textContent = fmtInt(n) + (n < D.n_total ? " of " + fmtInt(D.n_total) : "") + " points drawn";

    var single = D.projections.length === 1 ? D.projections[0].name : null;
    var layout = {
      height: 600, margin: {l: 30, r: 20, t: 20, b: 30}, hovermode: "closest", dragmode: "zoom",
      legend: {itemsizing: "constant"}, template: "plotly_white", uirevision: "keep",
      xaxis: {showticklabels: false, zeroline: false, showgrid: false, title: single ? {text: single + " 1"} : undefined},
      yaxis: {showticklabels: false, zeroline: false, showgrid: false, title: single ? {text: single + " 2"} : undefined},
    };
    performance.mark("latentatlas-newplot-" + box.id);
    Plotly.newPlot(plot, traces(0), layout,
                   {responsive: true, displaylogo: false, scrollZoom: true}).then(function (gd) {
      gd.on("plotly_hover", function (ev) {
        var pt = ev.points[0];
        if (pt.data.meta !== POINTS) return;
        show(members[pt.curveNumber][pt.pointNumber]);
      });
      gd.on("plotly_click", function (ev) {
        var pt = ev.points[0];
        if (pt.data.meta !== POINTS) return;
        var d = members[pt.curveNumber][pt.pointNumber];
        show(d); neighbours(d);
      });
      gd.on("plotly_selected", function (ev) {
        if (!ev || state.switching) return;
        var sel = [];
        ev.points.forEach(function (pt) { if (pt.data.meta === POINTS) sel.push(members[pt.curveNumber][pt.pointNumber]); });
        state.selected = sel;
        showSelection();
      });
      gd.on("plotly_deselect", function () { if (!state.switching) { state.selected = null; showSelection(); } });
      requestAnimationFrame(function () {
        var drawn = 0;
        gd._fullData.forEach(function (t) { if (t.meta === POINTS && t.visible === true) drawn += t._length; });
        box.setAttribute("data-drawn", drawn);
        box.setAttribute("data-ready", "1");
        performance.mark("latentatlas-drawn-" + box.id);
        if (--pending === 0) {
          performance.mark("latentatlas-drawn");
          // Decode the sprites only now, so they never delay the first drawing.
          whenParsed(function () {
            setTimeout(function () {
              Object.keys(window.latentatlas.explorers).forEach(function (id) { window.latentatlas.explorers[id].loadSprite(); });
            }, 0);
          });
        }
      });
    });

    function loadSprite() {
      var el = document.getElementById(box.id + "-sprite");
      if (!el || !spriteGeo) return;
      var blob = new Blob([bytes(el.textContent)], {type: "image/png"});
      createImageBitmap(blob).then(function (bmp) {
        sprite = bmp;
        box.setAttribute("data-sprite", "1");
        if (state.hovered >= 0) show(state.hovered);
        if (state.clicked >= 0) neighbours(state.clicked);
        if (state.selected) showSelection();
      });
    }
    window.latentatlas.explorers[box.id] = {
      data: D, state: state, members: members, plot: plot, loadSprite: loadSprite,
      show: show, neighbours: neighbours, project: project, search: search, label: label,
      // Where drawn point d is on screen (client pixels), for tests and benchmarks.
      screenXY: function (d) {
        var p = xyOf(d), fl = plot._fullLayout, r = plot.getBoundingClientRect();
        return [r.left + fl._size.l + fl.xaxis.l2p(p[0]), r.top + fl._size.t + fl.yaxis.l2p(p[1])];
      },
    };
  }
})();
