// 隐患点详情: facts, danger zone, households (masked by the API per role), persons, sensors with
// time series (thresholds, QC flags), inverse velocity and tangent angle, alerts and status history.
// Editing the register from here (site, households, risk zones, danger zone): inventory.js, dangerzone.js.
import { api, download } from "./api.js";
import { dangerZoneEditor } from "./dangerzone.js";
import { editSite, renderHouseholds, renderZones } from "./inventory.js";
import { COLOUR_HEX, HAZARD_ZH, MODE_ZH, SCALE_ZH, SENSOR_ZH, STABILITY_ZH, STATUS_ZH, chart, esc, fmtTime, fmtChina, levelBadge, loadCharts, num, toast } from "./util.js";

const QC_FLAG_ZH = { 1: "通过", 2: "未检", 3: "可疑", 4: "失败", 9: "缺测" };
const DAY = 86_400_000;

function person(p) {
  return p ? `${esc(p.name)}${p.phone ? `（${esc(p.phone)}）` : ""}` : "—";
}

// Threshold lines of a series from the rules in force (e.g. rain_24h: 50/70/110/160 mm).
function thresholds(rules, series) {
  const out = [];
  for (const rule of rules.effective || []) {
    for (const [colour, cond] of Object.entries(rule.levels || {})) {
      for (const term of cond.all || cond.any || []) {
        if (term.series === series && typeof term.value === "number" && !term.k) out.push({ colour, value: term.value, rule: rule.name });
      }
    }
  }
  const seen = new Set();
  return out.filter((t) => !seen.has(`${t.colour}${t.value}`) && seen.add(`${t.colour}${t.value}`));
}

function markLines(lines) {
  return {
    symbol: "none", silent: false,
    data: lines.map((t) => ({ yAxis: t.value, lineStyle: { color: COLOUR_HEX[t.colour], type: "dashed" },
      label: { formatter: `${t.value}`, color: COLOUR_HEX[t.colour] } })),
  };
}

function qcPoints(items) {
  return items.filter((p) => p.flag >= 3).map((p) => ({ value: [p.t, p.value], qc: p.qc, flag: p.flag }));
}

function rainChart(el, obs, rules) {
  const t = obs.items.map((p) => Date.parse(p.t));
  const sum24 = [];
  let j = 0, acc = 0;
  for (let i = 0; i < obs.items.length; i++) {
    acc += obs.items[i].flag <= 3 ? obs.items[i].value : 0;
    while (t[j] <= t[i] - DAY) { acc -= obs.items[j].flag <= 3 ? obs.items[j].value : 0; j++; }
    sum24.push([obs.items[i].t, Math.round(acc * 10) / 10]);
  }
  chart(el).setOption({
    tooltip: { trigger: "axis" }, legend: { top: 0, data: ["时段雨量", "24小时累计", "质控标记"] },
    grid: { left: 50, right: 55, top: 40, bottom: 60 }, dataZoom: [{ type: "inside" }, { type: "slider" }],
    xAxis: { type: "time" },
    yAxis: [{ type: "value", name: "mm" }, { type: "value", name: "24h mm" }],
    series: [
      { name: "时段雨量", type: "bar", data: obs.items.map((p) => [p.t, p.value]), itemStyle: { color: "#5dade2" } },
      { name: "24小时累计", type: "line", yAxisIndex: 1, showSymbol: false, data: sum24, lineStyle: { color: "#1a5276" },
        markLine: markLines(thresholds(rules, "rain_24h")) },
      { name: "质控标记", type: "scatter", data: qcPoints(obs.items), itemStyle: { color: "#c0392b" }, symbolSize: 9,
        tooltip: { formatter: (p) => `质控：${QC_FLAG_ZH[p.data.flag] || p.data.flag} ${esc(JSON.stringify(p.data.qc))}` } },
    ],
  });
}

function deformationCharts(el, elV, obs, unit) {
  const good = obs.items.filter((p) => p.flag <= 3);
  // Rate (mm/h) over hourly steps, then inverse velocity (Fukuzono 1985) and tangent angle arctan(v/v_eq)
  // (Xu Qiang's improved tangent-angle method), v_eq = median rate of the first half of the window.
  const hourly = [];
  for (const p of good) {
    const t = Date.parse(p.t);
    if (!hourly.length || t - hourly[hourly.length - 1].t >= 3_600_000) hourly.push({ t, v: p.value, iso: p.t });
  }
  const rate = [];
  for (let i = 1; i < hourly.length; i++) {
    const dh = (hourly[i].t - hourly[i - 1].t) / 3_600_000;
    rate.push([hourly[i].iso, Math.round(((hourly[i].v - hourly[i - 1].v) / dh) * 1000) / 1000]);
  }
  chart(el).setOption({
    tooltip: { trigger: "axis" }, legend: { top: 0, data: ["累计位移", "速率", "质控标记"] },
    grid: { left: 55, right: 60, top: 40, bottom: 60 }, dataZoom: [{ type: "inside" }, { type: "slider" }],
    xAxis: { type: "time" },
    yAxis: [{ type: "value", name: unit || "mm", scale: true }, { type: "value", name: `${unit || "mm"}/h`, scale: true }],
    series: [
      { name: "累计位移", type: "line", showSymbol: false, data: obs.items.map((p) => [p.t, p.value]) },
      { name: "速率", type: "line", yAxisIndex: 1, showSymbol: false, data: rate, lineStyle: { color: "#e67e22" } },
      { name: "质控标记", type: "scatter", data: qcPoints(obs.items), itemStyle: { color: "#c0392b" }, symbolSize: 9,
        tooltip: { formatter: (p) => `质控：${QC_FLAG_ZH[p.data.flag] || p.data.flag} ${esc(JSON.stringify(p.data.qc))}` } },
    ],
  });
  const early = rate.slice(0, Math.max(1, Math.floor(rate.length / 2))).map((r) => Math.abs(r[1])).sort((a, b) => a - b);
  const veq = early.length ? Math.max(early[Math.floor(early.length / 2)], 1e-3) : 1e-3;
  const smooth = rate.map((r, i) => {
    const w = rate.slice(Math.max(0, i - 5), i + 1);
    return [r[0], w.reduce((a, b) => a + b[1], 0) / w.length];
  });
  chart(elV).setOption({
    tooltip: { trigger: "axis" }, legend: { top: 0, data: ["反速度 1/v", "切线角"] },
    grid: { left: 55, right: 60, top: 40, bottom: 40 }, xAxis: { type: "time" },
    yAxis: [{ type: "value", name: "h/mm" }, { type: "value", name: "°", min: 0, max: 90 }],
    series: [
      { name: "反速度 1/v", type: "line", showSymbol: false, data: smooth.filter((r) => r[1] > 1e-3).map((r) => [r[0], Math.round(1000 / r[1]) / 1000]) },
      { name: "切线角", type: "line", yAxisIndex: 1, showSymbol: false, data: smooth.map((r) => [r[0], Math.round((Math.atan(r[1] / veq) * 180) / Math.PI * 10) / 10]),
        markLine: { symbol: "none", data: [{ yAxis: 80, lineStyle: { color: COLOUR_HEX.orange } }, { yAxis: 85, lineStyle: { color: COLOUR_HEX.red } }] } },
    ],
  });
}

export async function render(view, ctx, [idText]) {
  const id = Number(idText);
  view.innerHTML = `<div class="page" id="site-page"><h2>隐患点</h2><div class="muted">加载中…</div></div>`;
  const page = view.querySelector("#site-page");
  let s;
  try {
    s = await api(`/api/sites/${id}`);
  } catch (e) {
    page.innerHTML = `<h2>隐患点</h2><div class="card error">${esc(e.message)}</div>`;
    return null;
  }
  const [, shelters, stations, alerts, history, rules, patrols] = await Promise.all([
    loadCharts(),
    api("/api/shelters", { params: { limit: 1000 } }).then((r) => r.items).catch(() => []),
    api("/api/monitoring/stations", { params: { site_id: id } }).catch(() => ({ items: [] })),
    api("/api/alerts", { params: { site_id: id, limit: 100 } }).catch(() => ({ items: [] })),
    api(`/api/sites/${id}/history`).catch(() => ({ status_changes: [] })),
    api(`/api/sites/${id}/rules`).catch(() => ({ effective: [] })),
    api("/api/fieldwork/patrols", { params: { site_id: id, limit: 20 } }).catch(() => ({ items: [], total: 0 })),
  ]);
  page.innerHTML = `<h2>${esc(s.name)} <span class="muted">${esc(s.code)}</span>
    ${ctx.can("write") ? `<button class="secondary" id="site-edit">编辑</button>` : ""}</h2>
  <div class="grid">
    <div class="card"><h3>基本信息</h3><dl class="facts">
      <dt>灾种</dt><dd>${esc(HAZARD_ZH[s.hazard_type] || s.hazard_type)}</dd>
      <dt>状态</dt><dd>${esc(STATUS_ZH[s.status] || s.status)}（自 ${esc(s.status_since || "—")}）</dd>
      <dt>位置</dt><dd>${esc(s.location_text || "")}（${num(s.lon, 5)}, ${num(s.lat, 5)}）</dd>
      <dt>规模</dt><dd>${esc(SCALE_ZH[s.scale] || s.scale || "—")}${s.volume_m3 ? `，${num(s.volume_m3)} m³` : ""}</dd>
      <dt>稳定性</dt><dd>${esc(STABILITY_ZH[s.stability] || s.stability || "—")}</dd><dt>险情等级</dt><dd>${esc(SCALE_ZH[s.danger_grade] || s.danger_grade || "—")}</dd>
      <dt>威胁</dt><dd id="site-threat">${num(s.threatened_households)} 户 ${num(s.threatened_people)} 人，财产 ${esc(s.threatened_property_wan)} 万元</dd>
      <dt>监测方式</dt><dd>${esc(MODE_ZH[s.monitoring_mode] || s.monitoring_mode)}</dd>
      <dt>责任人</dt><dd id="site-responsible">${person(s.responsible_person)}</dd>
      <dt>监测员</dt><dd id="site-monitor">${person(s.monitor)}</dd>
    </dl></div>
    <div class="card"><h3>位置与威胁范围</h3><div id="site-map" style="height:260px"></div><div id="dz-box"></div></div>
  </div>
  <div class="card"><h3>监测数据</h3><div class="toolbar">时段 <select id="span"><option value="1">1天</option>
    <option value="3" selected>3天</option><option value="7">7天</option><option value="30">30天</option></select>
    <span class="muted">虚线为预警阈值；红点为质控可疑/失败的读数</span></div><div id="sensors">${stations.items.length ? "" : "<p class='muted'>无监测设备（群测群防）</p>"}</div></div>
  <div class="grid">
    <div><div class="card" id="households-card"></div><div class="card" id="zones-card"></div></div>
    <div class="card"><h3>预警记录</h3><table id="site-alerts"><tr><th>级别</th><th>规则</th><th>开始</th><th>状态</th></tr>
      ${alerts.items.map((a) => `<tr><td>${levelBadge(a.max_level, a.level_zh)}</td><td>${esc(a.rule_name || a.kind_zh)}</td><td>${esc(fmtTime(a.opened))}</td><td>${a.status === "open" ? "进行中" : "已结束"}${a.acknowledged ? "，已确认" : ""}</td></tr>`).join("") || "<tr><td colspan=4>无</td></tr>"}</table>
      <h3 style="margin-top:12px">状态变更</h3><table><tr><th>日期</th><th>变更</th><th>原因</th></tr>
      ${(history.status_changes || []).map((c) => `<tr><td>${esc(c.effective_on)}</td><td>${esc(STATUS_ZH[c.from_status] || "—")} → ${esc(STATUS_ZH[c.to_status] || c.to_status)}</td><td>${esc(c.reason)}</td></tr>`).join("")}</table>
      <h3 style="margin-top:12px">巡查记录（${num(patrols.total)} 次）<button class="secondary" id="site-card-pdf">明白卡 PDF</button></h3>
      <table id="site-patrols"><tr><th>时间</th><th>结果</th><th>巡查人</th><th>说明</th></tr>
      ${patrols.items.map((p) => `<tr data-result="${esc(p.result)}"><td>${esc(fmtChina(p.patrolled_at))}</td>
        <td>${p.result === "abnormal" ? "<b class='error'>异常</b>" : "正常"}</td><td>${esc(p.reporter)}</td><td>${esc(p.remarks || "")}</td></tr>`).join("")
        || "<tr><td colspan=4>无</td></tr>"}</table></div>
  </div>`;
  page.querySelector("#site-card-pdf").addEventListener("click", () =>
    download(`/api/fieldwork/cards/sites/${id}`, `${s.code}-防灾工作明白卡.pdf`).catch((e) => toast(e.message, true)));
  page.querySelector("#site-edit")?.addEventListener("click", async () => {
    const saved = await editSite(s);
    if (saved && saved !== "unchanged") {
      toast("已保存");
      location.reload();
    }
  });
  await Promise.all([renderHouseholds(page.querySelector("#households-card"), ctx, s, shelters),
    renderZones(page.querySelector("#zones-card"), ctx, s)]);
  const m = L.map(page.querySelector("#site-map"), { preferCanvas: true }).setView([s.lat, s.lon], 15);
  const shapes = L.featureGroup().addTo(m);
  const zone = L.featureGroup().addTo(shapes);
  if (s.danger_zone) L.geoJSON(s.danger_zone, { style: { color: "#c0392b", dashArray: "4 3", fillOpacity: 0.1 } }).addTo(zone);
  if (s.body) L.geoJSON(s.body, { style: { color: "#8e44ad", fillOpacity: 0.2 } }).addTo(shapes);
  L.circleMarker([s.lat, s.lon], { radius: 7, color: "#c0392b", fillOpacity: 0.9 }).addTo(shapes);
  if (s.danger_zone || s.body) m.fitBounds(shapes.getBounds(), { maxZoom: 17 });
  if (ctx.can("write")) dangerZoneEditor(page.querySelector("#dz-box"), m, s, zone, () => toast("威胁范围已保存"));

  const sensors = [];
  for (const st of stations.items) {
    const devices = await api("/api/monitoring/devices", { params: { station_id: st.id } });
    for (const d of devices.items) {
      const full = await api(`/api/monitoring/devices/${d.id}`);
      for (const sensor of full.sensors || []) if (sensor.active) sensors.push({ sensor, device: full, station: st });
    }
  }
  const box = page.querySelector("#sensors");
  async function draw() {
    const days = Number(page.querySelector("#span").value);
    const end = Date.now(), start = end - days * DAY;
    box.innerHTML = "";
    for (const { sensor, device } of sensors) {
      const isRain = sensor.sensor_type === "RAIN";
      if (isRain && sensor.channel !== "value") continue;
      if (sensor.sensor_type === "GP" && sensor.channel !== "gpsTotalX") continue;
      const card = document.createElement("div");
      card.innerHTML = `<h4>${esc(SENSOR_ZH[sensor.sensor_type] || sensor.sensor_type)} ${esc(sensor.code)}
        <span class="muted">${esc(sensor.quantity)}（${esc(sensor.unit)}）· 设备 ${esc(device.device_code)} ${device.open_event ? "<b class='error'>离线</b>" : "在线"}</span></h4>
        <div class="chart" data-sensor="${sensor.id}"></div>${isRain ? "" : `<div class="chart" style="height:220px" data-inverse="${sensor.id}"></div>`}`;
      box.appendChild(card);
      const params = { start, end };
      if (days > 7) params.bucket = "1h";
      let obs = await api(`/api/monitoring/sensors/${sensor.id}/observations`, { params }).catch(() => null);
      if (!obs) continue;
      if (params.bucket) obs = { ...obs, items: obs.items.map((p) => ({ t: p.t, value: isRain ? p.sum : p.last, flag: 1, qc: {} })) };
      if (isRain) rainChart(card.querySelector(".chart"), obs, rules);
      else deformationCharts(card.querySelector(".chart"), card.querySelector("[data-inverse]"), obs, sensor.unit);
    }
  }
  page.querySelector("#span").addEventListener("change", draw);
  await draw();
  return { destroy: () => m.remove() };
}
