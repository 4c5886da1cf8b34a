// 一张图: sites (canvas), zones, boundaries, stations, open alerts, regional warning areas, shelters.
import { api } from "./api.js";
import { SiteLayer } from "./sitelayer.js";
import { COLOUR_HEX, HAZARD_ZH, STATUS_ZH, SENSOR_ZH, esc, fmtTime, levelBadge, num } from "./util.js";

const TYPE_COLOURS = {
  landslide: "#8e44ad", rockfall: "#c0392b", debris_flow: "#16a085", ground_collapse: "#7f5539",
  ground_fissure: "#d35400", land_subsidence: "#2c3e50", unstable_slope: "#2980b9", steep_cut_slope: "#6d7f8f",
};
const STATUS_COLOURS = {
  registered: "#d2222d", under_treatment: "#f07f1a", treated: "#27ae60", relocated: "#2980b9", written_off: "#95a5a6",
};
const GRADE_COLOURS = { high: "#d2222d", medium: "#f07f1a", low: "#e6b800" };
const STATION_COLOURS = { online: "#27ae60", partial: "#f39c12", offline: "#7f8c8d" };

function mark(name, view) {
  if (view && !view.isConnected) return; // a render overtaken by a newer one
  performance.mark(name);
  (window.__gwPerf = window.__gwPerf || {})[name] = performance.now();
}

export async function render(view, ctx) {
  window.__gwPerf = {};
  mark("map-start");
  view.innerHTML = `<div class="map-wrap"><div id="map"></div>
    <button class="side-toggle secondary" id="side-toggle">图层与筛选</button>
    <aside class="map-side" id="map-side">
      <h3>筛选</h3>
      <label>乡镇<select id="f-town"><option value="">全部</option></select></label>
      <label>灾种<select id="f-type"><option value="">全部</option></select></label>
      <label>状态<select id="f-status"><option value="">全部</option></select></label>
      <label>预警级别<select id="f-level"><option value="1">蓝色及以上</option><option value="2">黄色及以上</option>
        <option value="3">橙色及以上</option><option value="4">红色</option></select></label>
      <label>隐患点着色<select id="f-colour"><option value="type">按灾种</option><option value="status">按状态</option></select></label>
      <p class="muted" id="site-count"></p>
      <h3>图例</h3><div class="legend" id="legend"></div>
      <h3>当前预警</h3><div id="alert-list" class="muted">—</div>
    </aside></div>`;
  const side = view.querySelector("#map-side");
  view.querySelector("#side-toggle").addEventListener("click", () => side.classList.toggle("open"));

  // Everything the first paint needs is requested at once.
  const first = Promise.all([api("/api/map/sites"), api("/api/map/boundaries")]);
  const config = await fetch("/web-config.json").then((r) => r.json()).catch(() => ({}));
  const map = L.map(view.querySelector("#map"), { preferCanvas: true, zoomControl: true, minZoom: 3, maxZoom: 18 });
  window.__gwMap = map;
  const canvas = L.canvas({ padding: 0.5 });
  const layers = {};
  if (config.basemap_url) {
    L.tileLayer(config.basemap_url, { attribution: config.basemap_attribution || "", maxZoom: 18 }).addTo(map);
  } else {
    view.querySelector(".map-wrap").insertAdjacentHTML("beforeend",
      `<div class="offline-note">离线模式：未配置底图（GEOWARN_BASEMAP_URL），仅显示行政区划边界</div>`);
  }
  map.setView([26.6, 118.9], 9);

  // Sites and boundaries first: they make the map meaningful.
  const [sites, bounds] = await first;
  const byId = new Map();
  for (let i = 0; i < sites.count; i++) byId.set(sites.id[i], i);
  const townNames = {};
  for (const f of bounds.features) townNames[f.properties.code] = f.properties.name;

  const boundaryLayer = L.geoJSON(bounds, {
    renderer: canvas, interactive: false,
    style: (f) => ({ color: f.properties.level === "township" ? "#345" : "#111", weight: f.properties.level === "township" ? 1 : 2.5,
      fill: !config.basemap_url, fillColor: "#f4f1ea", fillOpacity: f.properties.level === "township" ? 0.5 : 0.0 }),
  }).addTo(map);
  const towns = bounds.features.filter((f) => f.properties.level === "township");
  if (towns.length && towns.length < 300) {
    for (const f of towns) {
      const c = L.geoJSON(f).getBounds().getCenter();
      L.tooltip({ permanent: true, direction: "center", className: "town-label", interactive: false })
        .setLatLng(c).setContent(esc(f.properties.name)).addTo(boundaryLayer);
    }
  }
  layers["行政区划边界"] = boundaryLayer;
  if (bounds.features.length) map.fitBounds(boundaryLayer.getBounds(), { animate: false });
  else if (sites.count) map.fitBounds(L.latLngBounds(sites.lat.map((y, i) => [y, sites.lon[i]])), { animate: false });

  const typePalette = sites.types.map((t) => TYPE_COLOURS[t] || "#555555");
  const statusPalette = sites.statuses.map((s) => STATUS_COLOURS[s] || "#555555");
  const siteLayer = new SiteLayer(sites, (i) => sites.type[i], typePalette);
  siteLayer.once("drawn", (e) => {
    requestAnimationFrame(() => {
      if (!view.isConnected) return;
      window.__gwPerf.sites = sites.count;
      window.__gwPerf.drawMs = e.ms;
      mark("map-sites-drawn", view);
    });
  });
  siteLayer.addTo(map);
  layers["隐患点"] = siteLayer;

  // Filters.
  const fill = (sel, values, label) => {
    const el = view.querySelector(sel);
    el.insertAdjacentHTML("beforeend", values.map((v, i) => `<option value="${i}">${esc(label(v))}</option>`).join(""));
  };
  fill("#f-town", sites.towns, (c) => townNames[c] || c || "未定");
  fill("#f-type", sites.types, (t) => HAZARD_ZH[t] || t);
  fill("#f-status", sites.statuses, (s) => STATUS_ZH[s] || s);
  const legend = () => {
    const colourBy = view.querySelector("#f-colour").value;
    const keys = colourBy === "type" ? sites.types : sites.statuses;
    const pal = colourBy === "type" ? typePalette : statusPalette;
    const names = colourBy === "type" ? HAZARD_ZH : STATUS_ZH;
    view.querySelector("#legend").innerHTML = keys.map((k, i) => `<div><span style="background:${pal[i]}"></span>${esc(names[k] || k)}</div>`).join("")
      + `<div><span style="background:${STATION_COLOURS.online}"></span>监测站在线</div>`
      + `<div><span style="background:${STATION_COLOURS.offline}"></span>监测站离线</div>`
      + `<div><span style="background:#fff;border:2px solid #27ae60;border-radius:0"></span>避险点</div>`;
  };
  const applyFilter = () => {
    const town = view.querySelector("#f-town").value, type = view.querySelector("#f-type").value;
    const status = view.querySelector("#f-status").value;
    let mask = null, shown = sites.count;
    if (town !== "" || type !== "" || status !== "") {
      mask = new Uint8Array(sites.count);
      shown = 0;
      const t = town === "" ? -1 : +town, y = type === "" ? -1 : +type, s = status === "" ? -1 : +status;
      for (let i = 0; i < sites.count; i++) {
        const ok = (t < 0 || sites.town[i] === t) && (y < 0 || sites.type[i] === y) && (s < 0 || sites.status[i] === s);
        mask[i] = ok ? 1 : 0;
        shown += ok ? 1 : 0;
      }
    }
    siteLayer.setFilter(mask);
    view.querySelector("#site-count").textContent = `显示隐患点 ${num(shown)} / ${num(sites.count)} 处`;
    if (town !== "") {
      const code = sites.towns[+town];
      const f = bounds.features.find((x) => x.properties.code === code);
      if (f) map.fitBounds(L.geoJSON(f).getBounds());
    }
    drawAlerts();
  };
  for (const id of ["#f-town", "#f-type", "#f-status", "#f-level"]) view.querySelector(id).addEventListener("change", applyFilter);
  view.querySelector("#f-colour").addEventListener("change", (e) => {
    if (e.target.value === "type") siteLayer.setColours((i) => sites.type[i], typePalette);
    else siteLayer.setColours((i) => sites.status[i], statusPalette);
    legend();
  });
  legend();

  // Click on a site: a popup from the scoped site record.
  map.on("click", async (e) => {
    const i = siteLayer.nearest(e.containerPoint);
    if (i < 0) return;
    const id = sites.id[i];
    const popup = L.popup().setLatLng([sites.lat[i], sites.lon[i]]).setContent("加载中…").openOn(map);
    try {
      const s = await api(`/api/sites/${id}`);
      popup.setContent(`<b>${esc(s.name)}</b><br>${esc(s.code)}<br>${esc(HAZARD_ZH[s.hazard_type] || s.hazard_type)} · ${esc(STATUS_ZH[s.status] || s.status)}
        <br>威胁 ${num(s.threatened_households)} 户 ${num(s.threatened_people)} 人<br>${esc(s.location_text || "")}
        <br><a href="#/site/${id}" class="site-link">查看详情 »</a>`);
    } catch (err) {
      popup.setContent(esc(err.message));
    }
  });

  // The other layers load after the first paint.
  const alertLayer = L.layerGroup().addTo(map);
  layers["当前预警"] = alertLayer;
  let openAlerts = [];
  function drawAlerts() {
    alertLayer.clearLayers();
    const min = +view.querySelector("#f-level").value;
    const town = view.querySelector("#f-town").value;
    const worst = new Map(); // one marker per site: its highest open alert
    for (const a of openAlerts) {
      if (a.level < min || a.site_id === null || !byId.has(a.site_id)) continue;
      if (town !== "" && sites.town[byId.get(a.site_id)] !== +town) continue;
      const had = worst.get(a.site_id);
      if (!had || a.level > had.level) worst.set(a.site_id, a);
    }
    const shown = [...worst.values()];
    shown.sort((a, b) => a.level - b.level);
    for (const a of shown) {
      const i = byId.get(a.site_id);
      L.circleMarker([sites.lat[i], sites.lon[i]], { renderer: canvas, radius: 11, color: COLOUR_HEX[a.colour], weight: 4,
        fillOpacity: 0.15, className: "gw-alert" })
        .bindPopup(`${levelBadge(a.level, a.level_zh)} <b>${esc(a.site_name || "")}</b><br>${esc(a.rule_name || a.kind_zh)}
          <br>开始 ${esc(fmtTime(a.opened))}<br><a href="#/alerts">处置 »</a> · <a href="#/site/${a.site_id}">隐患点 »</a>`)
        .addTo(alertLayer);
    }
    const list = view.querySelector("#alert-list");
    list.innerHTML = shown.length
      ? shown.slice().reverse().slice(0, 30).map((a) => `<div data-alert="${a.id}" data-level="${a.level}">${levelBadge(a.level, a.level_zh)} ${esc(a.site_name || "")}</div>`).join("")
      : "无";
  }
  api("/api/alerts", { params: { status: "open", limit: 1000 } }).then((r) => {
    openAlerts = r.items.filter((a) => a.level > 0);
    drawAlerts();
    mark("map-alerts-drawn", view);
  }).catch(() => null);

  const zoneLayer = L.layerGroup().addTo(map);
  layers["风险区与威胁范围"] = zoneLayer;
  api("/api/map/zones").then((fc) => {
    L.geoJSON(fc, {
      renderer: canvas,
      style: (f) => f.properties.kind === "risk_zone"
        ? { color: GRADE_COLOURS[f.properties.grade] || "#999", weight: 1, fillOpacity: 0.18 }
        : { color: "#c0392b", weight: 1, dashArray: "4 3", fill: false },
      onEachFeature: (f, l) => l.bindTooltip(f.properties.kind === "risk_zone"
        ? `风险区 ${esc(f.properties.name)}（${{ high: "高", medium: "中", low: "低" }[f.properties.grade] || ""}风险，${num(f.properties.people)} 人）`
        : `威胁范围：${esc(f.properties.name)}`),
    }).addTo(zoneLayer);
  }).catch(() => null);

  const stationLayer = L.layerGroup().addTo(map);
  layers["监测站"] = stationLayer;
  Promise.all([api("/api/map/stations"), api("/api/monitoring/latest")]).then(([st, latest]) => {
    const values = {};
    for (const s of latest.items) (values[s.station_id] = values[s.station_id] || []).push(s);
    for (const s of st.items) {
      const rows = (values[s.id] || []).map((v) => `<tr><td>${esc(v.code)}</td><td>${esc(v.channel)}</td><td>${v.value === null ? "—" : num(v.value, 3)} ${esc(v.unit || "")}</td><td class="muted">${esc(fmtTime(v.t))}</td></tr>`).join("");
      const devs = s.devices.map((d) => `${esc(SENSOR_ZH[d.type] || d.type)} ${d.online ? "在线" : "离线"}`).join("，");
      L.circleMarker([s.lat, s.lon], { renderer: canvas, radius: 5, color: "#fff", weight: 1, fillColor: STATION_COLOURS[s.state], fillOpacity: 1 })
        .bindPopup(`<b>${esc(s.name)}</b>（${{ online: "在线", partial: "部分在线", offline: "离线" }[s.state]}）<br>${devs}
          <table>${rows}</table>${s.site_id ? `<a href="#/site/${s.site_id}">隐患点 »</a>` : ""}`, { maxWidth: 420 })
        .addTo(stationLayer);
    }
  }).catch(() => null);

  const shelterLayer = L.layerGroup();
  layers["避险点"] = shelterLayer;
  api("/api/shelters", { params: { limit: 1000 } }).then((r) => {
    for (const s of r.items) {
      L.circleMarker([s.lat, s.lon], { renderer: canvas, radius: 4, color: "#27ae60", weight: 2, fillColor: "#fff", fillOpacity: 1 })
        .bindTooltip(`避险点：${esc(s.name)}${s.capacity ? `（容纳 ${num(s.capacity)} 人）` : ""}`).addTo(shelterLayer);
    }
    shelterLayer.addTo(map);
  }).catch(() => null);

  const regionalLayer = L.layerGroup().addTo(map);
  layers["区域预警范围"] = regionalLayer;
  api("/api/products", { params: { limit: 50 } }).then(async (r) => {
    const live = r.items.filter((p) => p.issued && !p.lifted && p.current_version);
    for (const p of live) {
      const fc = await api(`/api/products/${p.id}/versions/${p.current_version}/areas`);
      L.geoJSON(fc, {
        renderer: canvas, interactive: true,
        style: (f) => ({ color: COLOUR_HEX[f.properties.colour], weight: 1, fillColor: COLOUR_HEX[f.properties.colour], fillOpacity: 0.15 }),
        onEachFeature: (f, l) => l.bindTooltip(`${esc(p.title)}：${esc(f.properties.level_zh)}（${num(f.properties.area_km2, 1)} km²）`),
      }).addTo(regionalLayer);
    }
    regionalLayer.eachLayer((l) => l.bringToBack && l.bringToBack());
  }).catch(() => null);

  L.control.layers(null, layers, { collapsed: true }).addTo(map);
  applyFilter();
  return { destroy: () => { map.remove(); delete window.__gwMap; } };
}
