(function () {
  "use strict";
  // Sortable, filterable connections table; open every <details> before printing.
  var table = document.getElementById("conn-table");
  if (table) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var heads = table.tHead.rows[0].cells;
    var key = function (row, i, numeric) {
      var cell = row.cells[i];
      var v = cell.getAttribute("data-v");
      if (numeric) { var n = parseFloat(v !== null ? v : cell.textContent); return isNaN(n) ? -Infinity : n; }
      return (v !== null ? v : cell.textContent).toLowerCase();
    };
    Array.prototype.forEach.call(heads, function (th, i) {
      th.tabIndex = 0;
      var sort = function () {
        var numeric = th.getAttribute("data-type") === "num";
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var sorted = rows.slice().sort(function (a, b) {
          var x = key(a, i, numeric), y = key(b, i, numeric);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        var frag = document.createDocumentFragment();
        sorted.forEach(function (r) { frag.appendChild(r); });
        body.appendChild(frag);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
    var input = document.getElementById("conn-filter");
    var count = document.getElementById("conn-count");
    var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    if (input) {
      input.addEventListener("input", function () {
        var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
        var shown = 0;
        rows.forEach(function (r, j) {
          var ok = terms.every(function (t) { return texts[j].indexOf(t) !== -1; });
          r.hidden = !ok;
          if (ok) { shown += 1; }
        });
        if (count) { count.textContent = shown + " of " + rows.length + " rows"; }
      });
    }
  }
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) { d.open = true; });
  });
})();
