// Small helpers shared by the pages: escaping, labels in Chinese, toasts, dialogs.
export const HAZARD_ZH = {
  landslide: "滑坡", rockfall: "崩塌", debris_flow: "泥石流", ground_collapse: "地面塌陷", ground_fissure: "地裂缝",
  land_subsidence: "地面沉降", unstable_slope: "不稳定斜坡", steep_cut_slope: "房前屋后高陡边坡",
};
export const STATUS_ZH = {
  registered: "在册", under_treatment: "治理中", treated: "已治理", relocated: "已搬迁", written_off: "已核销",
};
export const ROLE_ZH = { administrator: "管理员", operator: "业务人员", monitor: "监测员", viewer: "查看者", weather: "气象预报员" };
export const MODE_ZH = { community: "群测群防", instrumented: "专业监测", both: "群专结合" };
export const LEVEL_COLOUR = { 1: "blue", 2: "yellow", 3: "orange", 4: "red" };
export const LEVEL_ZH = { 0: "无", 1: "蓝色", 2: "黄色", 3: "橙色", 4: "红色" };
export const COLOUR_HEX = { blue: "#1f6fd1", yellow: "#e6b800", orange: "#f07f1a", red: "#d2222d", none: "#8a96a3" };
export const SENSOR_ZH = { GP: "GNSS位移", LF: "裂缝计", RAIN: "雨量计", QJ: "倾角计", SW: "水位计" };
export const DEPT_ZH = { natural_resources: "自然资源", weather: "气象" };

export function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export function h(html) {
  const t = document.createElement("template");
  t.innerHTML = html.trim();
  return t.content.firstElementChild;
}

export function levelBadge(level, label) {
  const c = LEVEL_COLOUR[level] || "none";
  return `<span class="level level-${c}" data-level="${level}">${esc(label || LEVEL_ZH[level] || "无")}</span>`;
}

export function fmtTime(iso) {
  if (!iso) return "—";
  return String(iso).replace("T", " ").replace(/(\.\d+)?\+08:00$/, "").replace(/Z$/, " UTC");
}

export function num(v, d = 0) {
  return v === null || v === undefined ? "—" : Number(v).toLocaleString("zh-CN", { maximumFractionDigits: d });
}

export function toast(message, isError = false) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = "toast" + (isError ? " err" : "");
  clearTimeout(toast._t);
  toast._t = setTimeout(() => el.classList.add("hidden"), 4000);
}

export function errorText(e) {
  return e && e.message ? e.message : String(e);
}

// A modal form: resolves with the form's values, or null when cancelled.
export function dialog(title, fieldsHtml, okText = "确定") {
  return new Promise((resolve) => {
    const d = h(`<div class="dialog"><div><h3>${esc(title)}</h3><form>${fieldsHtml}
      <div class="toolbar"><button type="submit" class="ok">${esc(okText)}</button>
      <button type="button" class="secondary cancel">取消</button></div></form></div></div>`);
    document.body.appendChild(d);
    const form = d.querySelector("form");
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const values = Object.fromEntries(new FormData(form).entries());
      d.remove();
      resolve(values);
    });
    d.querySelector(".cancel").addEventListener("click", () => { d.remove(); resolve(null); });
    const first = form.querySelector("input,textarea,select");
    if (first) first.focus();
  });
}

export function todayChina() {
  const d = new Date(Date.now() + 8 * 3600_000);
  return d.toISOString().slice(0, 10);
}

// ECharts (1 MB) is loaded on the first page that draws a chart, not before the map.
let echartsLoading = null;
export function loadCharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  if (!echartsLoading) {
    echartsLoading = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = "/static/vendor/echarts/dist/echarts.min.js";
      s.onload = () => resolve(window.echarts);
      s.onerror = () => reject(new Error("图表库加载失败"));
      document.head.appendChild(s);
    });
  }
  return echartsLoading;
}

export function chart(el) {
  const existing = echarts.getInstanceByDom(el);
  if (existing) existing.dispose();
  const c = echarts.init(el, null, { renderer: "canvas" });
  new ResizeObserver(() => c.resize()).observe(el);
  return c;
}
export const SCALE_ZH = { small: "小型", medium: "中型", large: "大型", huge: "特大型" };
export const STABILITY_ZH = { stable: "稳定", fairly_stable: "基本稳定", unstable: "不稳定" };
export const SUMMARY_ZH = {
  area_km2: "面积(km²)", sites: "隐患点", site_people: "威胁人数", site_households: "威胁户数", zones: "风险区",
  zone_people: "风险区人数", zone_households: "风险区户数",
};

// Township codes (9 digits) → names, from the caller's unit tree (GET /api/units).
export function townshipNames(tree) {
  const out = {};
  const walk = (nodes) => nodes.forEach((n) => {
    if (n.code.length === 9) out[n.code] = n.name;
    walk(n.children || []);
  });
  walk(tree || []);
  return out;
}

// Every unit code in the caller's tree → name (the county's own rows in per-township tables).
export function unitNames(tree) {
  const out = {};
  const walk = (nodes) => nodes.forEach((n) => { out[n.code] = n.name; walk(n.children || []); });
  walk(tree || []);
  return out;
}

// Any ISO 8601 time (UTC "Z" or with an offset) as China time, to the second.
export function fmtChina(iso) {
  if (!iso) return "—";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  return new Date(t + 8 * 3600_000).toISOString().slice(0, 19).replace("T", " ");
}
