// 威胁范围 editing on the site page's map, with Leaflet alone: click the map to add a vertex, drag a
// vertex to move it, double-click one to remove it; or paste a GeoJSON Polygon/MultiPolygon. Saved
// through PATCH /api/sites/{id} (danger_zone); the API's reason for refusing it (e.g. a ring that
// crosses itself) is shown beside the editor in Chinese.
import { api } from "./api.js";
import { fieldErrors } from "./forms.js";
import { esc } from "./util.js";

const STYLE = { color: "#c0392b", weight: 2, dashArray: "4 3", fillOpacity: 0.15 };

// The outer ring of a single-part polygon as [lat, lng] vertices (null when the shape has more).
function verticesOf(geojson) {
  if (!geojson) return [];
  const polys = geojson.type === "MultiPolygon" ? geojson.coordinates : geojson.type === "Polygon" ? [geojson.coordinates] : [];
  if (polys.length !== 1 || polys[0].length !== 1) return null;
  const ring = polys[0][0].slice(0, -1);
  return ring.map(([lon, lat]) => L.latLng(lat, lon));
}

function polygonOf(vertices) {
  const ring = vertices.map((p) => [Math.round(p.lng * 1e7) / 1e7, Math.round(p.lat * 1e7) / 1e7]);
  return { type: "Polygon", coordinates: [[...ring, ring[0]]] };
}

// Checks a pasted text before sending it: JSON, a (Multi)Polygon or a Feature of one, closed rings of
// at least 4 positions in longitude/latitude degrees. Returns [geometry, null] or [null, reason].
export function parseGeoJSON(text) {
  let g;
  try {
    g = JSON.parse(text);
  } catch (e) {
    return [null, `不是有效的 JSON：${e.message}`];
  }
  if (g && g.type === "FeatureCollection") {
    if (!Array.isArray(g.features) || g.features.length !== 1) return [null, "要素集合中须恰好有一个要素"];
    g = g.features[0];
  }
  if (g && g.type === "Feature") g = g.geometry;
  if (!g || (g.type !== "Polygon" && g.type !== "MultiPolygon")) return [null, `须为 Polygon 或 MultiPolygon，而不是 ${esc((g && g.type) || "空")}`];
  const polys = g.type === "Polygon" ? [g.coordinates] : g.coordinates;
  if (!Array.isArray(polys) || !polys.length) return [null, "没有坐标"];
  for (const poly of polys) {
    if (!Array.isArray(poly) || !poly.length) return [null, "多边形没有环"];
    for (const ring of poly) {
      if (!Array.isArray(ring) || ring.length < 4) return [null, "每个环至少需要 4 个坐标（首尾相同）"];
      for (const p of ring) {
        if (!Array.isArray(p) || p.length < 2 || !p.every((c) => typeof c === "number" && Number.isFinite(c))) return [null, "坐标须为数字 [经度, 纬度]"];
        if (Math.abs(p[0]) > 180 || Math.abs(p[1]) > 90) return [null, `坐标超出范围：[${p[0]}, ${p[1]}]（须为经纬度）`];
      }
      const [a, b] = [ring[0], ring[ring.length - 1]];
      if (a[0] !== b[0] || a[1] !== b[1]) return [null, "环未闭合：首尾坐标须相同"];
    }
  }
  return [g, null];
}

// Wires the editor to the site map. `shown` is the layer drawing the current zone (hidden while editing);
// `onSaved(site)` gets the updated site.
export function dangerZoneEditor(box, map, site, shown, onSaved) {
  box.innerHTML = `<div class="toolbar"><button class="secondary" id="dz-edit">编辑威胁范围</button></div>`;
  box.querySelector("#dz-edit").addEventListener("click", start);
  let vertices = [], markers = [], outline = null;

  function redraw() {
    markers.forEach((m) => m.remove());
    if (outline) outline.remove();
    outline = vertices.length >= 2 ? L.polygon(vertices, STYLE).addTo(map) : null;
    markers = vertices.map((p, i) => {
      const m = L.marker(p, { draggable: true, icon: L.divIcon({ className: "dz-vertex", iconSize: [12, 12] }) }).addTo(map);
      m.on("drag", (ev) => { vertices[i] = ev.target.getLatLng(); if (outline) outline.setLatLngs(vertices); });
      m.on("dblclick", (ev) => { L.DomEvent.stop(ev); vertices.splice(i, 1); redraw(); });
      return m;
    });
    box.querySelector("#dz-count").textContent = `${vertices.length} 个顶点`;
  }

  function addVertex(ev) {
    vertices.push(ev.latlng);
    redraw();
  }

  function stop() {
    map.off("click", addVertex);
    map.doubleClickZoom.enable();
    markers.forEach((m) => m.remove());
    if (outline) outline.remove();
    markers = [];
    outline = null;
    if (shown) shown.addTo(map);
    dangerZoneEditor(box, map, site, shown, onSaved);
  }

  function start() {
    const existing = verticesOf(site.danger_zone);
    vertices = existing || [];
    box.innerHTML = `<div class="dz-editor" id="dz-editor"><p class="muted">在地图上单击添加顶点，拖动顶点移动，双击顶点删除。${existing ? ""
      : "<b>现有范围为多面或带洞，请用 GeoJSON 编辑。</b>"}</p>
      <div class="toolbar"><span id="dz-count" class="muted"></span><button class="secondary" id="dz-undo">撤销</button>
      <button class="secondary" id="dz-clear">清空</button><button class="secondary" id="dz-paste">粘贴 GeoJSON</button>
      <button id="dz-save">保存</button><button class="secondary" id="dz-cancel">取消</button></div>
      <textarea id="dz-geojson" class="hidden" rows="5" placeholder='{"type":"Polygon","coordinates":[[[经度,纬度],…]]}'>${
        existing ? "" : esc(JSON.stringify(site.danger_zone))}</textarea>
      <div id="dz-error" class="error" role="alert"></div></div>`;
    if (!existing) box.querySelector("#dz-geojson").classList.remove("hidden");
    if (shown) shown.remove();
    map.doubleClickZoom.disable();
    map.on("click", addVertex);
    redraw();
    const error = box.querySelector("#dz-error");
    box.querySelector("#dz-undo").addEventListener("click", () => { vertices.pop(); redraw(); });
    box.querySelector("#dz-clear").addEventListener("click", () => { vertices = []; redraw(); });
    box.querySelector("#dz-paste").addEventListener("click", () => box.querySelector("#dz-geojson").classList.toggle("hidden"));
    box.querySelector("#dz-cancel").addEventListener("click", stop);
    box.querySelector("#dz-save").addEventListener("click", async () => {
      error.textContent = "";
      const text = box.querySelector("#dz-geojson").value.trim();
      let geometry = null;
      if (text && !box.querySelector("#dz-geojson").classList.contains("hidden")) {
        const [g, reason] = parseGeoJSON(text);
        if (!g) { error.textContent = `GeoJSON 无效：${reason}`; return; }
        geometry = g;
      } else if (vertices.length >= 3) geometry = polygonOf(vertices);
      else if (vertices.length) { error.textContent = "至少需要 3 个顶点"; return; }
      try {
        const saved = await api(`/api/sites/${site.id}`, { method: "PATCH", json: { version: site.version, danger_zone: geometry } });
        Object.assign(site, saved);
        if (shown) shown.clearLayers();
        if (saved.danger_zone && shown) L.geoJSON(saved.danger_zone, { style: STYLE }).addTo(shown);
        stop();
        onSaved(saved);
      } catch (e) {
        error.textContent = Object.values(fieldErrors(e)).join("；");
      }
    });
  }
}
