// Expensely demo: a hash-routed SPA (#/reports, #/reports/new, #/reports/123/edit, #/receipts,
// #/approvals, #/mileage), the way many enterprise expense tools route.
(function () {
  "use strict";

  var APP = "Expensely";
  var REPORTS = [
    { id: 123, name: "Chicago customer visit – Acme Freight", dates: "Nov 17–19, 2026", total: 1284.37, status: "Draft" },
    { id: 121, name: "Q4 sales kickoff, Denver", dates: "Oct 28–30, 2026", total: 2130.10, status: "Submitted" },
    { id: 118, name: "Client dinner – Contoso", dates: "Oct 9, 2026", total: 412.80, status: "Approved" },
    { id: 114, name: "Home office supplies", dates: "Sep 22, 2026", total: 96.45, status: "Paid" },
    { id: 109, name: "Trade show – Logistics Summit", dates: "Sep 2–4, 2026", total: 1876.00, status: "Returned" }
  ];
  var LINES = [
    ["Nov 17", "Airfare", "United Airlines", "USD", "486.20", true],
    ["Nov 17", "Ground transport", "Uber", "USD", "52.18", true],
    ["Nov 17–19", "Hotel", "Hilton Chicago (2 nights)", "USD", "612.40", true],
    ["Nov 18", "Meals – client", "Gibsons Steakhouse", "USD", "98.60", false],
    ["Nov 19", "Parking", "O'Hare long-term", "USD", "34.99", false]
  ];
  var APPROVALS = [
    ["Riley Chen", "Customer onsite – Fabrikam", "Nov 24", "1,102.55", "Within policy"],
    ["Sam Ortiz", "Trade show booth supplies", "Nov 23", "3,480.00", "Over limit: booth rental"],
    ["Dana Whitfield", "Team offsite lunch", "Nov 21", "640.00", "Missing attendee list"],
    ["Priya Raman", "Mileage – Nov territory visits", "Nov 20", "187.60", "Within policy"]
  ];

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function badge(s) { return '<span class="status s-' + s.toLowerCase() + '">' + esc(s) + "</span>"; }

  function parse() {
    var h = location.hash.replace(/^#/, "");
    var m;
    if (h === "" || h === "/") return { page: "redirect" };
    if (h === "/reports") return { page: "reports" };
    if (h === "/reports/new") return { page: "new" };
    if ((m = h.match(/^\/reports\/(\d+)\/edit$/))) return { page: "edit", id: Number(m[1]) };
    if ((m = h.match(/^\/reports\/(\d+)$/))) return { page: "edit", id: Number(m[1]) };
    if (h === "/receipts") return { page: "receipts" };
    if (h === "/approvals") return { page: "approvals" };
    if (h === "/mileage") return { page: "mileage" };
    return { page: "notfound" };
  }

  var views = {
    reports: function () {
      var rows = REPORTS.map(function (r) {
        return '<tr><td><a href="#/reports/' + r.id + '/edit">' + esc(r.name) + "</a></td><td>" + r.dates +
          '</td><td class="num">$' + r.total.toFixed(2) + "</td><td>" + badge(r.status) + "</td></tr>";
      }).join("");
      return {
        nav: "reports", title: "Expense reports · " + APP,
        html: '<div class="head"><h1>Expense reports</h1><a class="btn primary" href="#/reports/new" id="create-report">Create report</a></div>' +
          '<div class="summary"><div><span>Awaiting reimbursement</span><strong>$2,542.90</strong></div><div><span>Drafts</span><strong>1</strong></div><div><span>Returned to you</span><strong>1</strong></div></div>' +
          '<h2>My reports</h2><table class="grid" id="reports-table"><thead><tr><th>Report</th><th>Dates</th><th class="num">Total</th><th>Status</th></tr></thead><tbody>' + rows + "</tbody></table>"
      };
    },
    "new": function () {
      return {
        nav: "new", title: "New report · " + APP,
        html: '<div class="head"><h1>New expense report</h1></div>' +
          '<form id="expense-report-form" class="card form">' +
          "<h2>Report header</h2>" +
          '<label>Report name *<input name="name" required placeholder="e.g. Chicago customer visit – Acme Freight"></label>' +
          '<label>Business purpose *<textarea name="purpose" rows="3" required placeholder="Who, what, why: e.g. Renewal negotiation with Acme Freight VP Operations"></textarea></label>' +
          '<div class="cols"><label>Trip start<input type="date" name="start"></label><label>Trip end<input type="date" name="end"></label>' +
          '<label>Cost center<select name="cc"><option>4100 – Sales Operations</option><option>4200 – Field Sales</option><option>5100 – Marketing</option></select></label>' +
          '<label>Project / customer code<input name="project" placeholder="optional, e.g. ACME-2027"></label>' +
          '<label>Policy<select name="policy"><option>US Domestic Travel</option><option>International Travel</option><option>Non-travel</option></select></label>' +
          '<label>Approver<input name="approver" value="Dana Whitfield (manager)" readonly></label></div>' +
          '<div class="actions"><a class="btn" href="#/reports">Cancel</a><button class="btn primary" type="submit">Create and add expenses</button></div></form>'
      };
    },
    edit: function (r) {
      var rep = REPORTS.filter(function (x) { return x.id === r.id; })[0] || { id: r.id, name: "Report " + r.id, dates: "—", total: 0, status: "Draft" };
      var lines = LINES.map(function (l) {
        return "<tr><td>" + l[0] + "</td><td>" + l[1] + "</td><td>" + esc(l[2]) + "</td><td>" + l[3] + '</td><td class="num">' + l[4] +
          "</td><td>" + (l[5] ? '<span class="ok">Attached</span>' : '<span class="warn">Missing</span>') + "</td></tr>";
      }).join("");
      return {
        nav: "reports", title: "Edit report " + rep.id + " · " + APP,
        html: '<div class="head"><div><p class="crumb">Report #' + rep.id + " · " + badge(rep.status) + "</p><h1>" + esc(rep.name) + "</h1></div>" +
          '<div><button class="btn" type="button">Add expense</button> <button class="btn primary" type="button" id="submit-report">Submit report</button></div></div>' +
          '<div class="alert">2 expenses need a receipt or a missing-receipt declaration before you can submit.</div>' +
          '<h2>Expenses</h2><table class="grid" id="expense-lines"><thead><tr><th>Date</th><th>Type</th><th>Merchant</th><th>Currency</th><th class="num">Amount</th><th>Receipt</th></tr></thead><tbody>' +
          lines + '</tbody><tfoot><tr><td colspan="4">Report total</td><td class="num">$1,284.37</td><td></td></tr></tfoot></table>' +
          '<form class="card form" id="expense-line-form"><h2>Add expense</h2><div class="cols">' +
          '<label>Expense type<select><option>Meals – client</option><option>Meals – individual</option><option>Hotel</option><option>Airfare</option><option>Ground transport</option><option>Mileage</option></select></label>' +
          '<label>Amount<input type="number" step="0.01"></label><label>Currency<select><option>USD</option><option>EUR</option><option>GBP</option><option>CAD</option></select></label>' +
          '<label>Attendees<input placeholder="Names and companies for client meals"></label></div></form>'
      };
    },
    receipts: function () {
      return {
        nav: "receipts", title: "Receipts · " + APP,
        html: '<div class="head"><h1>Receipts</h1><button class="btn primary" type="button" id="upload-receipt">Upload receipt</button></div>' +
          '<p class="hint">Forward e-receipts to <strong>receipts@expensely.example.com</strong> or snap them in the mobile app. Unmatched receipts wait here.</p>' +
          '<div class="tiles" id="receipt-inbox">' +
          '<div class="tile"><div class="thumb">PDF</div><strong>Hilton Chicago</strong><span>$612.40 · Nov 19</span><em>Matched to report #123</em></div>' +
          '<div class="tile"><div class="thumb">JPG</div><strong>Uber</strong><span>$52.18 · Nov 17</span><em>Matched to report #123</em></div>' +
          '<div class="tile"><div class="thumb">JPG</div><strong>Blue Bottle Coffee</strong><span>$14.25 · Nov 18</span><em class="warn">Not on a report</em></div></div>'
      };
    },
    approvals: function () {
      var rows = APPROVALS.map(function (a, i) {
        return '<tr><td><input type="checkbox" aria-label="Select"></td><td>' + esc(a[0]) + "</td><td>" + esc(a[1]) + "</td><td>" + a[2] +
          '</td><td class="num">$' + a[3] + "</td><td>" + (a[4] === "Within policy" ? '<span class="ok">' : '<span class="warn">') + esc(a[4]) + "</span></td>" +
          '<td><button class="btn small" type="button">Approve</button> <button class="btn small" type="button">Return</button></td></tr>';
      }).join("");
      return {
        nav: "approvals", title: "Approvals · " + APP,
        html: '<div class="head"><h1>Approvals</h1><span class="muted">Approver: Dana Whitfield</span></div>' +
          '<h2>Waiting for you (4)</h2><table class="grid" id="approvals-queue"><thead><tr><th></th><th>Employee</th><th>Report</th><th>Submitted</th><th class="num">Total</th><th>Policy check</th><th>Action</th></tr></thead><tbody>' +
          rows + "</tbody></table>"
      };
    },
    mileage: function () {
      return {
        nav: "mileage", title: "Mileage · " + APP,
        html: '<div class="head"><h1>Mileage claim</h1></div>' +
          '<form class="card form" id="mileage-form"><div class="cols">' +
          '<label>Date<input type="date" name="date"></label><label>Vehicle<select><option>Personal car</option><option>Personal motorcycle</option></select></label>' +
          '<label>From<input name="from" placeholder="Home office, Evanston IL"></label><label>To<input name="to" placeholder="Acme Freight, Chicago IL"></label>' +
          '<label>Distance (miles)<input type="number" name="miles" id="miles" min="0" step="0.1"></label>' +
          '<label>Rate<input value="$0.70 / mile" readonly></label>' +
          '<label>Round trip<select name="round"><option>No</option><option>Yes</option></select></label>' +
          '<label>Reimbursable amount<output id="mileage-amount">$0.00</output></label></div>' +
          '<label>Business purpose<input name="purpose" placeholder="Customer visit: quarterly business review"></label>' +
          '<div class="actions"><button class="btn primary" type="button">Add to report #123</button></div></form>'
      };
    },
    notfound: function () {
      return { nav: "", title: "Not found · " + APP, html: '<h1>Page not found</h1><p><a href="#/reports">Back to expense reports</a></p>' };
    }
  };

  function render() {
    var r = parse();
    if (r.page === "redirect") { location.replace("#/reports"); return; }
    var v = views[r.page](r);
    document.getElementById("view").innerHTML = v.html;
    document.title = v.title;
    Array.prototype.forEach.call(document.querySelectorAll("[data-nav]"), function (a) {
      if (a.getAttribute("data-nav") === v.nav) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    var form = document.getElementById("expense-report-form");
    if (form) form.addEventListener("submit", function (e) {
      e.preventDefault();
      location.hash = "#/reports/123/edit";
      toast("Report created. Add your expenses.");
    });
    var miles = document.getElementById("miles");
    if (miles) miles.addEventListener("input", function () {
      document.getElementById("mileage-amount").textContent = "$" + (Number(miles.value || 0) * 0.7).toFixed(2);
    });
  }

  function toast(text) {
    var t = document.getElementById("toast");
    t.textContent = text;
    t.hidden = false;
    setTimeout(function () { t.hidden = true; }, 3000);
  }

  window.addEventListener("hashchange", render);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", render);
  else render();
})();
