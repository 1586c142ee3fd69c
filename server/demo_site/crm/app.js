// Northwind CRM demo: a tiny single-page app. Routes with history.pushState on in-app link
// clicks and re-renders from location.pathname, so every page works through the server's
// "unknown path under /demo/crm/ falls back to index.html" rule.
(function () {
  "use strict";

  var APP = "Northwind CRM";

  var OPPS = {
    1040: { name: "Contoso Retail – POS rollout", account: "Contoso Retail", stage: "Proposal", amount: 184000, close: "2026-12-18", owner: "Jordan Lee", prob: 60 },
    1041: { name: "Fabrikam – Fleet telematics", account: "Fabrikam Inc.", stage: "Negotiation", amount: 96500, close: "2026-12-05", owner: "Priya Raman", prob: 80 },
    1042: { name: "Acme Freight – 2027 renewal", account: "Acme Freight", stage: "Negotiation", amount: 248000, close: "2026-12-12", owner: "Jordan Lee", prob: 75 },
    1043: { name: "Tailspin Toys – Warehouse scanners", account: "Tailspin Toys", stage: "Discovery", amount: 42000, close: "2027-02-27", owner: "Sam Ortiz", prob: 20 },
    1044: { name: "Litware – Support upgrade", account: "Litware", stage: "Qualification", amount: 18750, close: "2027-01-30", owner: "Priya Raman", prob: 10 },
    1045: { name: "Adventure Works – EU expansion", account: "Adventure Works", stage: "Proposal", amount: 310000, close: "2027-03-15", owner: "Jordan Lee", prob: 50 }
  };

  var ACCOUNTS = [
    ["Acme Freight", "Logistics", "Chicago, IL", "Jordan Lee", "$1.2M", "Customer"],
    ["Adventure Works", "Manufacturing", "Seattle, WA", "Jordan Lee", "$640K", "Customer"],
    ["Contoso Retail", "Retail", "Dallas, TX", "Priya Raman", "$410K", "Customer"],
    ["Fabrikam Inc.", "Transportation", "Denver, CO", "Priya Raman", "$96K", "Prospect"],
    ["Litware", "Software", "Austin, TX", "Priya Raman", "$55K", "Customer"],
    ["Tailspin Toys", "Consumer goods", "Portland, OR", "Sam Ortiz", "$0", "Prospect"],
    ["Wide World Importers", "Wholesale", "Miami, FL", "Sam Ortiz", "$780K", "Customer"]
  ];

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function money(n) { return "$" + Number(n).toLocaleString("en-US"); }

  // The mount point: everything up to and including "/crm/" (works under /demo/crm/).
  function base() {
    var p = location.pathname, i = p.indexOf("/crm");
    return i >= 0 ? p.slice(0, i) + "/crm/" : "/demo/crm/";
  }
  function route() {
    var rest = location.pathname.slice(base().length).replace(/\/+$/, "");
    var parts = rest ? rest.split("/") : [];
    if (parts.length === 0) return { page: "dashboard" };
    if (parts[0] === "accounts") return { page: "accounts" };
    if (parts[0] === "reports") return { page: "reports" };
    if (parts[0] === "opportunities" && parts[1] === "new") return { page: "new" };
    if (parts[0] === "opportunities" && /^\d+$/.test(parts[1] || "")) return { page: "opportunity", id: Number(parts[1]) };
    if (parts[0] === "opportunities") return { page: "opportunity", id: 1042 };
    return { page: "notfound" };
  }

  function stageBadge(stage) {
    return '<span class="badge stage-' + esc(stage.toLowerCase().replace(/\s+/g, "-")) + '">' + esc(stage) + "</span>";
  }

  var views = {
    dashboard: function () {
      var rows = Object.keys(OPPS).map(function (id) {
        var o = OPPS[id];
        return "<tr><td><a href=\"" + base() + "opportunities/" + id + "\">" + esc(o.name) + "</a></td><td>" +
          esc(o.account) + "</td><td>" + stageBadge(o.stage) + "</td><td class=\"num\">" + money(o.amount) +
          "</td><td>" + o.close + "</td><td>" + esc(o.owner) + "</td></tr>";
      }).join("");
      return {
        title: "Pipeline · " + APP,
        html:
          '<div class="pagehead"><h1>Pipeline dashboard</h1>' +
          '<a class="btn primary" id="new-opportunity-link" href="' + base() + 'opportunities/new">+ New opportunity</a></div>' +
          '<section class="kpis" aria-label="Quarter to date">' +
          '<div class="kpi"><span>Open pipeline</span><strong>$899,250</strong></div>' +
          '<div class="kpi"><span>Commit (Q4)</span><strong>$344,500</strong></div>' +
          '<div class="kpi"><span>Closed won (Q4)</span><strong>$512,300</strong></div>' +
          '<div class="kpi"><span>Quota attainment</span><strong>71%</strong></div></section>' +
          '<h2>Open opportunities</h2>' +
          '<table class="grid"><thead><tr><th>Opportunity</th><th>Account</th><th>Stage</th><th class="num">Amount</th><th>Close date</th><th>Owner</th></tr></thead><tbody>' +
          rows + "</tbody></table>" +
          '<h2>Tasks due this week</h2><ul class="tasks">' +
          "<li>Send revised pricing to Acme Freight <em>due Tue</em></li>" +
          "<li>Confirm legal review for Contoso MSA <em>due Wed</em></li>" +
          "<li>Update next steps on 3 stale opportunities <em>due Fri</em></li></ul>"
      };
    },
    accounts: function () {
      var rows = ACCOUNTS.map(function (a) {
        return "<tr><td><a href=\"" + base() + "accounts/\">" + esc(a[0]) + "</a></td><td>" + esc(a[1]) + "</td><td>" + esc(a[2]) +
          "</td><td>" + esc(a[3]) + "</td><td class=\"num\">" + esc(a[4]) + "</td><td>" + esc(a[5]) + "</td></tr>";
      }).join("");
      return {
        title: "Accounts · " + APP,
        html:
          '<div class="pagehead"><h1>Accounts</h1><button class="btn" type="button">+ New account</button></div>' +
          '<div class="filters"><label>View <select><option>My accounts</option><option>All accounts</option><option>Recently viewed</option></select></label>' +
          '<label>Industry <select><option>Any</option><option>Logistics</option><option>Retail</option></select></label></div>' +
          '<h2>My accounts (7)</h2>' +
          '<table class="grid" id="accounts-table"><thead><tr><th>Account name</th><th>Industry</th><th>Billing city</th><th>Owner</th><th class="num">Annual revenue</th><th>Type</th></tr></thead><tbody>' +
          rows + "</tbody></table>"
      };
    },
    "new": function () {
      return {
        title: "New Opportunity · " + APP,
        html:
          '<div class="pagehead"><h1>New opportunity</h1></div>' +
          '<form id="opportunity-form" class="card form" novalidate>' +
          "<h2>Opportunity information</h2>" +
          '<div class="cols">' +
          '<label>Opportunity name *<input name="name" required placeholder="Account – what they are buying"></label>' +
          '<label>Account *<select name="account" required><option value="">Select an account…</option>' +
          ACCOUNTS.map(function (a) { return "<option>" + esc(a[0]) + "</option>"; }).join("") + "</select></label>" +
          '<label>Stage *<select name="stage"><option>Qualification</option><option>Discovery</option><option>Proposal</option><option>Negotiation</option><option>Closed Won</option><option>Closed Lost</option></select></label>' +
          '<label>Amount (USD) *<input name="amount" type="number" min="0" step="100" required></label>' +
          '<label>Close date *<input name="close" type="date" required></label>' +
          '<label>Forecast category<select name="forecast"><option>Pipeline</option><option>Best case</option><option>Commit</option><option>Omitted</option></select></label>' +
          '<label>Lead source<select name="source"><option>Inbound web</option><option>Partner referral</option><option>Event</option><option>Outbound</option></select></label>' +
          '<label>Primary campaign<input name="campaign" placeholder="e.g. FY27 Logistics Summit"></label>' +
          "</div>" +
          '<label class="wide">Next step<input name="next" placeholder="What happens next, and by when?"></label>' +
          '<label class="wide">Description<textarea name="description" rows="4"></textarea></label>' +
          '<div class="actions"><a class="btn" href="' + base() + '">Cancel</a><button class="btn primary" type="submit">Save opportunity</button></div>' +
          '<p class="error" id="form-error" hidden>Fill in every field marked *.</p>' +
          "</form>"
      };
    },
    opportunity: function (r) {
      var o = OPPS[r.id] || { name: "Opportunity " + r.id, account: "Wide World Importers", stage: "Discovery", amount: 50000, close: "2027-01-15", owner: "Jordan Lee", prob: 20 };
      var stages = ["Qualification", "Discovery", "Proposal", "Negotiation", "Closed Won"];
      var path = stages.map(function (s) {
        return '<li class="' + (s === o.stage ? "current" : stages.indexOf(s) < stages.indexOf(o.stage) ? "done" : "") + '">' + s + "</li>";
      }).join("");
      return {
        title: "Opportunity #" + r.id + " · " + o.name + " · " + APP,
        html:
          '<article id="opportunity-record" data-opportunity-id="' + r.id + '">' +
          '<div class="pagehead"><div><p class="crumb">Opportunity #' + r.id + "</p><h1>" + esc(o.name) + "</h1></div>" +
          '<div><button class="btn" type="button">Log a call</button> <button class="btn" type="button">Request discount</button> <button class="btn primary" type="button">Mark stage complete</button></div></div>' +
          '<ol class="stagepath">' + path + "</ol>" +
          '<div class="twocol"><section class="card"><h2>Details</h2><dl class="details">' +
          "<dt>Account</dt><dd>" + esc(o.account) + "</dd><dt>Amount</dt><dd>" + money(o.amount) + "</dd>" +
          "<dt>Close date</dt><dd>" + o.close + "</dd><dt>Probability</dt><dd>" + o.prob + "%</dd>" +
          "<dt>Owner</dt><dd>" + esc(o.owner) + "</dd><dt>Forecast category</dt><dd>Commit</dd>" +
          "<dt>Next step</dt><dd>Procurement call with CFO on Dec 3</dd></dl></section>" +
          '<section class="card"><h2>Activity</h2><ul class="timeline">' +
          "<li><strong>Call</strong> · Nov 24 · Reviewed 3-year pricing with VP Operations.</li>" +
          "<li><strong>Email</strong> · Nov 20 · Sent security questionnaire answers.</li>" +
          "<li><strong>Meeting</strong> · Nov 12 · Onsite demo of route optimisation module.</li></ul>" +
          '<h2>Products</h2><table class="grid"><thead><tr><th>Product</th><th class="num">Qty</th><th class="num">Discount</th></tr></thead><tbody>' +
          '<tr><td>Northwind Fleet Platform</td><td class="num">120</td><td class="num">12%</td></tr>' +
          '<tr><td>Premium Support</td><td class="num">1</td><td class="num">0%</td></tr></tbody></table></section></div>' +
          "</article>"
      };
    },
    reports: function () {
      return {
        title: "Reports · " + APP,
        html:
          '<div class="pagehead"><h1>Reports</h1><button class="btn primary" type="button" id="new-report">+ New report</button></div>' +
          '<h2>Folders</h2><ul class="folders"><li>My reports (4)</li><li>Sales leadership (12)</li><li>Public reports (31)</li></ul>' +
          '<h2>Recent reports</h2><table class="grid" id="reports-table"><thead><tr><th>Report name</th><th>Type</th><th>Folder</th><th>Last run</th></tr></thead><tbody>' +
          "<tr><td>Q4 pipeline by stage</td><td>Opportunities</td><td>My reports</td><td>Today</td></tr>" +
          "<tr><td>Stale opportunities (no activity 30 days)</td><td>Opportunities with activities</td><td>Sales leadership</td><td>Yesterday</td></tr>" +
          "<tr><td>Closed lost reasons – FY26</td><td>Opportunities</td><td>Public reports</td><td>Nov 21</td></tr>" +
          "<tr><td>Accounts without owner</td><td>Accounts</td><td>Public reports</td><td>Nov 18</td></tr></tbody></table>"
      };
    },
    notfound: function () {
      return {
        title: "Page not found · " + APP,
        html: '<h1>Page not found</h1><p>This page does not exist. <a href="' + base() + '">Back to the pipeline</a>.</p>'
      };
    }
  };

  function render() {
    var r = route();
    var v = views[r.page](r);
    var main = document.getElementById("view");
    main.innerHTML = v.html;
    document.title = v.title;
    var section = r.page === "new" || r.page === "opportunity" ? "opportunities" : r.page;
    Array.prototype.forEach.call(document.querySelectorAll("[data-nav]"), function (a) {
      if (a.getAttribute("data-nav") === section) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    var form = document.getElementById("opportunity-form");
    if (form) form.addEventListener("submit", onSubmit);
  }

  function navigate(url) {
    history.pushState({}, "", url);
    render();
    window.scrollTo(0, 0);
  }

  function toast(text) {
    var t = document.getElementById("toast");
    t.textContent = text;
    t.hidden = false;
    setTimeout(function () { t.hidden = true; }, 3000);
  }

  function onSubmit(e) {
    e.preventDefault();
    var f = e.target;
    var ok = ["name", "account", "amount", "close"].every(function (n) { return f.elements[n].value.trim() !== ""; });
    document.getElementById("form-error").hidden = ok;
    if (!ok) return;
    var id = 1046;
    OPPS[id] = {
      name: f.elements.name.value, account: f.elements.account.value, stage: f.elements.stage.value,
      amount: Number(f.elements.amount.value), close: f.elements.close.value, owner: "Jordan Lee", prob: 10
    };
    navigate(base() + "opportunities/" + id);
    toast("Opportunity saved.");
  }

  // In-app links: same origin, under the CRM mount, plain left click.
  document.addEventListener("click", function (e) {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    var a = e.target.closest ? e.target.closest("a[href]") : null;
    if (!a || a.target || a.hasAttribute("download")) return;
    var url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.indexOf(base()) !== 0) return;
    e.preventDefault();
    if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search + url.hash);
  });
  window.addEventListener("popstate", render);

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", render);
  else render();
})();
