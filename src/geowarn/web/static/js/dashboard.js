// 综合看板: sites by township / type / status, threatened people, device online rate, active warnings.
import { api } from "./api.js";
import { KIND_ZH, warningSummary } from "./dissemination.js";
import { COLOUR_HEX, HAZARD_ZH, LEVEL_ZH, STATUS_ZH, chart, esc, fmtTime, levelBadge, loadCharts, num, todayChina } from "./util.js";

export async function render(view) {
  view.innerHTML = `<div class="page"><h2>综合看板</h2><div class="kpis" id="kpis"></div>
    <div class="grid" style="margin-top:12px">
      <div class="card"><h3>各乡镇隐患点与受威胁人数</h3><div class="chart" id="c-town"></div></div>
      <div class="card"><h3>灾种构成</h3><div class="chart" id="c-type"></div></div>
      <div class="card"><h3>隐患点状态</h3><div class="chart" id="c-status"></div></div>
      <div class="card"><h3>今日设备在线率（按乡镇）</h3><div class="chart" id="c-online"></div></div>
      <div class="card"><h3>当前预警（按级别）</h3><div class="chart" id="c-alerts"></div></div>
      <div class="card"><h3>区域气象风险预警</h3><div id="products"></div></div>
    </div>
    <div class="card" style="margin-top:12px"><h3>预警发布与响应（最近发布）</h3><div id="dissemination"></div></div></div>`;
  const [stats, online, alerts, products] = await Promise.all([
    loadCharts().then(() => api("/api/stats")),
    api("/api/monitoring/online-rate", { params: { date: todayChina(), by: "township" } }).catch(() => null),
    api("/api/alerts", { params: { status: "open", limit: 1 } }),
    api("/api/products", { params: { limit: 20 } }).catch(() => ({ items: [] })),
  ]);
  const h = stats.hazard_sites;
  const openTotal = Object.values(alerts.open_by_level).reduce((a, b) => a + b, 0);
  view.querySelector("#kpis").innerHTML = [
    ["在册隐患点", `${num(h.sites)} 处`, "kpi-sites"], ["受威胁人数", `${num(h.people)} 人`, "kpi-people"],
    ["受威胁户数", `${num(h.households)} 户`, "kpi-households"], ["威胁财产", `${esc(h.property_wan)} 万元`, "kpi-property"],
    ["高陡边坡", `${num(stats.steep_slopes.sites)} 处`, "kpi-slopes"],
    ["设备在线率", online && online.total.rate !== null ? `${num(online.total.rate * 100, 1)}%` : "—", "kpi-online"],
    ["当前预警", `${num(openTotal)} 条`, "kpi-alerts"],
  ].map(([k, v, id]) => `<div class="kpi" id="${id}">${esc(k)}<b>${v}</b></div>`).join("");

  const towns = h.by_township;
  chart(view.querySelector("#c-town")).setOption({
    tooltip: { trigger: "axis" }, legend: { top: 0, data: ["隐患点", "受威胁人数"] },
    grid: { left: 45, right: 50, bottom: 70, top: 35 },
    xAxis: { type: "category", data: towns.map((t) => t.label), axisLabel: { rotate: 40 } },
    yAxis: [{ type: "value", name: "处" }, { type: "value", name: "人" }],
    series: [{ name: "隐患点", type: "bar", data: towns.map((t) => t.sites) },
      { name: "受威胁人数", type: "line", yAxisIndex: 1, data: towns.map((t) => t.people) }],
  });
  const pie = (el, rows, names) => chart(view.querySelector(el)).setOption({
    tooltip: { trigger: "item", formatter: "{b}：{c} 处（{d}%）" }, legend: { bottom: 0 },
    series: [{ type: "pie", radius: ["35%", "65%"], data: rows.map((r) => ({ name: names[r.hazard_type ?? r.status] || r.label, value: r.sites })) }],
  });
  pie("#c-type", h.by_hazard_type, HAZARD_ZH);
  pie("#c-status", h.by_status, STATUS_ZH);
  if (online) {
    chart(view.querySelector("#c-online")).setOption({
      tooltip: { trigger: "axis", valueFormatter: (v) => `${v}%` }, grid: { left: 45, right: 20, bottom: 70, top: 20 },
      xAxis: { type: "category", data: online.items.map((r) => r.unit_name || r.unit_code), axisLabel: { rotate: 40 } },
      yAxis: { type: "value", max: 100, name: "%" },
      series: [{ type: "bar", data: online.items.map((r) => (r.rate === null ? 0 : Math.round(r.rate * 1000) / 10)),
        itemStyle: { color: "#27ae60" } }],
    });
  }
  const levels = ["blue", "yellow", "orange", "red"];
  chart(view.querySelector("#c-alerts")).setOption({
    tooltip: {}, grid: { left: 45, right: 20, bottom: 30, top: 20 },
    xAxis: { type: "category", data: levels.map((c, i) => `${LEVEL_ZH[i + 1]}`) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "bar", data: levels.map((c) => ({ value: alerts.open_by_level[c] || 0, itemStyle: { color: COLOUR_HEX[c] } })) }],
  });
  view.querySelector("#products").innerHTML = `<table><tr><th>预警</th><th>级别</th><th>状态</th><th>发布时间</th></tr>
    ${products.items.map((p) => `<tr><td><a href="#/products/${p.id}">${esc(p.title)}</a></td><td>${levelBadge(p.level, p.level_zh)}</td>
    <td>${esc(p.status_zh)}</td><td>${esc(fmtTime(p.issued))}</td></tr>`).join("") || "<tr><td colspan=4>无</td></tr>"}</table>
`;
  const dis = view.querySelector("#dissemination");
  disseminationSummary(dis).catch((e) => { dis.innerHTML = `<p class="error">${esc(e.message)}</p>`; });
  return null;
}

// Sent / delivered / confirmed / transferred of the latest disseminated warnings (a few small requests each).
async function disseminationSummary(el) {
  const [issues, tasks] = await Promise.all([
    api("/api/dissemination/warnings", { params: { limit: 6 } }).catch(() => ({ items: [] })),
    api("/api/response/tasks", { params: { kind: "transfer", limit: 1000 } }).catch(() => ({ items: [] })),
  ]);
  const rows = await Promise.all(issues.items.map(async (i) => ({ i, c: (await warningSummary(i, tasks.items)).counts })));
  el.innerHTML = `<table id="dissemination-summary"><tr><th>预警</th><th>级别</th><th>发布时间</th><th>接收人</th><th>已发送</th><th>已送达</th>
    <th>已确认</th><th>已转移/应转移</th></tr>${rows.map(({ i, c }) => `<tr data-issue="${i.id}">
    <td><a href="#/dissemination/${i.id}">${esc(i.title)}</a> <span class="muted">${esc(KIND_ZH[i.kind] || i.kind)}</span></td>
    <td>${levelBadge(i.level)}</td><td>${esc(fmtTime(i.issued))}</td><td>${num(c.recipients)}</td><td>${num(c.sent)}</td>
    <td>${num(c.delivered)}</td><td>${num(c.confirmed)}</td><td>${num(c.transferred)}/${num(c.ordered)}</td></tr>`).join("")
    || "<tr><td colspan=8>暂无预警发布记录</td></tr>"}</table>`;
}
