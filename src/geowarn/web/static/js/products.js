// 区域预警: upload rain grids (or use the gauges) → draft; submit to review; sign off for natural
// resources / weather; issue; update; lift. Every step is the API's workflow (geowarn.warning.products).
import { api } from "./api.js";
import { COLOUR_HEX, DEPT_ZH, LEVEL_ZH, SUMMARY_ZH, dialog, esc, fmtTime, levelBadge, num, toast } from "./util.js";

const KIND_ZH = { initial: "首次", update: "更新", lift: "解除" };

async function step(promise, done) {
  try {
    await promise;
    toast(done);
    return true;
  } catch (e) {
    toast(e.message, true);
    return false;
  }
}

function areasToContent(fc) {
  const areas = {};
  for (const f of fc.features || []) {
    const lv = Number(f.properties.level);
    if (lv >= 1 && lv <= 4) areas[lv] = f.geometry;
  }
  return areas;
}

export async function render(view, ctx, [idText]) {
  view.innerHTML = `<div class="page"><h2>区域地质灾害气象风险预警</h2><div class="grid">
    <div class="card"><h3>预警产品</h3><table id="product-table"></table></div>
    <div class="card" id="compute-card"><h3>新建预警（上传降雨格网）</h3>
      <form id="compute-form"><div class="toolbar"><label>降雨格网（ASCII Grid/GeoTIFF，先预报时段后前期各日）
        <input type="file" name="rain" id="rain-files" multiple></label></div>
        <div class="toolbar"><label>易发性分区（可选）<input type="file" name="susceptibility"></label></div>
        <div class="toolbar"><label>标题 <input name="title" size="30" placeholder="默认按时间生成"></label>
        <label>有效时长 <input name="valid_hours" type="number" value="24" min="1" max="72" style="width:60px"> 小时</label></div>
        <div class="toolbar"><button type="submit" id="compute-submit">计算并生成草稿</button>
        <span class="muted">不上传格网时按雨量站插值</span></div></form></div>
  </div><div id="product-detail"></div></div>`;
  if (!ctx.can("warn")) view.querySelector("#compute-card").classList.add("hidden");
  let areaMap = null;
  const list = async () => {
    const r = await api("/api/products", { params: { limit: 50 } });
    view.querySelector("#product-table").innerHTML = `<tr><th>编号</th><th>标题</th><th>级别</th><th>状态</th><th>发布</th></tr>
      ${r.items.map((p) => `<tr data-product="${p.id}"><td>${esc(p.code)}</td><td><a href="#/products/${p.id}">${esc(p.title)}</a></td>
      <td>${levelBadge(p.level, p.level_zh)}</td><td class="p-status">${esc(p.status_zh)}</td><td>${esc(fmtTime(p.issued))}</td></tr>`).join("") || "<tr><td colspan=5>无</td></tr>"}`;
    return r.items;
  };
  const detail = async (id) => {
    const box = view.querySelector("#product-detail");
    const p = await api(`/api/products/${id}`);
    const perms = ctx.me.permissions;
    const depts = ["natural_resources", "weather"].filter((d) => perms.includes(`sign_${d}`));
    const current = p.versions[p.versions.length - 1];
    box.innerHTML = `<div class="card" id="product-card" data-status="${esc(p.status)}"><h3>${esc(p.title)} ${levelBadge(p.level, p.level_zh)}
      <span class="muted">${esc(p.code)} · ${esc(p.status_zh)}</span></h3>
      <div class="grid"><div><table id="version-table"><tr><th>版本</th><th>类型</th><th>状态</th><th>级别</th><th>有效期</th><th>会商签发</th></tr>
      ${p.versions.map((v) => `<tr data-version="${v.number}" data-state="${v.state}"><td>${v.number}</td><td>${KIND_ZH[v.kind] || v.kind}</td><td>${esc(v.state_zh)}</td>
        <td>${levelBadge(v.level, LEVEL_ZH[v.level])}</td><td>${esc(fmtTime(v.valid_from))}<br>${esc(fmtTime(v.valid_to))}</td>
        <td>${v.signoffs.map((s) => `${DEPT_ZH[s.department]}：${s.decision === "approve" ? "同意" : "退回"}（${esc(s.username)}）`).join("<br>")}
        ${v.missing_signoffs.length && v.state === "review" ? `<br><span class="muted">待签：${v.missing_signoffs.map((d) => DEPT_ZH[d]).join("、")}</span>` : ""}</td></tr>`).join("")}</table>
      <h4>影响统计（版本 ${current.number}）</h4><table>${Object.entries((current.summary && current.summary.levels) || {}).map(([c, s]) =>
        `<tr><td><span class="level level-${esc(c)}">${esc({ blue: "蓝色", yellow: "黄色", orange: "橙色", red: "红色" }[c] || c)}</span></td><td>${Object.entries(s).filter(([, v]) => typeof v === "number").map(([k, v]) => `${esc(SUMMARY_ZH[k] || k)}：${num(v, 1)}`).join("，")}</td></tr>`).join("")}</table>
      <div class="toolbar" id="product-actions" style="margin-top:10px">
        ${ctx.can("warn") && current.state === "draft" ? `<button id="act-submit">提交会商</button>` : ""}
        ${current.state === "review" ? depts.map((d) => `<button data-sign="${d}" class="act-sign">${DEPT_ZH[d]}签发</button>`).join("") : ""}
        ${ctx.can("warn") && current.state === "review" && !current.missing_signoffs.length ? `<button id="act-issue" class="danger">发布</button>` : ""}
        ${ctx.can("warn") && p.status === "issued" && current.state === "issued" ? `<button id="act-update" class="secondary">更新</button><button id="act-lift" class="secondary">解除</button>` : ""}
      </div></div><div id="area-map" style="height:340px"></div></div></div>`;
    // Actions first (usable at once), then the map of the areas.
    const base = `/api/products/${p.id}/versions/${current.number}`;
    const again = async (ok) => { if (ok) { await list(); await detail(id); } };
    box.querySelector("#act-submit")?.addEventListener("click", async () => again(await step(api(`${base}/submit`, { method: "POST" }), "已提交会商")));
    box.querySelectorAll(".act-sign").forEach((btn) => btn.addEventListener("click", async () => {
      const v = await dialog(`${DEPT_ZH[btn.dataset.sign]}会商签发`, `<label>意见<select name="decision"><option value="approve">同意发布</option>
        <option value="reject">退回修改</option></select></label><label>说明<textarea name="comment" rows="2"></textarea></label>`, "签发");
      if (v) again(await step(api(`${base}/sign`, { method: "POST", json: { department: btn.dataset.sign, decision: v.decision, comment: v.comment || null } }), "已签发"));
    }));
    box.querySelector("#act-issue")?.addEventListener("click", async () => again(await step(api(`${base}/issue`, { method: "POST" }), "已发布")));
    const newVersion = async (kind) => {
      const v = await dialog(kind === "lift" ? "解除预警" : "更新预警", `<label>有效时长（小时）<input name="hours" type="number" value="24" min="1" max="72"></label>
        <label>说明<textarea name="message" rows="2"></textarea></label>${kind === "update" ? "<p class='muted'>预警区沿用当前版本；需调整时请重新上传格网生成新产品。</p>" : ""}`);
      if (!v) return;
      const now = Date.now();
      const areas = kind === "update" ? areasToContent(await api(`${base}/areas`)) : {};
      again(await step(api(`/api/products/${p.id}/versions`, { method: "POST", json: { kind, valid_from: String(now),
        valid_to: String(now + Number(v.hours) * 3_600_000), message: v.message || null, areas, summary: current.summary || {} } }), "已生成草稿版本"));
    };
    box.querySelector("#act-update")?.addEventListener("click", () => newVersion("update"));
    box.querySelector("#act-lift")?.addEventListener("click", () => newVersion("lift"));
    if (areaMap) areaMap.remove();
    areaMap = L.map(box.querySelector("#area-map"), { preferCanvas: true });
    const bounds = await api("/api/map/boundaries").catch(() => ({ features: [] }));
    const b = L.geoJSON(bounds, { style: { color: "#345", weight: 1, fill: false } }).addTo(areaMap);
    const shown = [...p.versions].reverse().find((v) => v.areas.length) || current;
    const fc = await api(`/api/products/${p.id}/versions/${shown.number}/areas`);
    L.geoJSON(fc, { style: (f) => ({ color: COLOUR_HEX[f.properties.colour], weight: 1, fillOpacity: 0.4 }),
      onEachFeature: (f, l) => l.bindTooltip(`${esc(f.properties.level_zh)} ${num(f.properties.area_km2, 1)} km²`) }).addTo(areaMap);
    if (b.getLayers().length) areaMap.fitBounds(b.getBounds()); else areaMap.setView([26.6, 118.9], 9);
  };
  view.querySelector("#compute-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const form = new FormData();
    for (const file of f.rain.files) form.append("rain", file);
    if (f.susceptibility.files[0]) form.append("susceptibility", f.susceptibility.files[0]);
    if (f.title.value) form.append("title", f.title.value);
    form.append("valid_hours", f.valid_hours.value);
    const btn = view.querySelector("#compute-submit");
    btn.disabled = true;
    try {
      const p = await api("/api/products/compute", { method: "POST", form });
      toast("已生成预警草稿");
      location.hash = `#/products/${p.id}`;
    } catch (e) {
      toast(e.message, true);
    } finally {
      btn.disabled = false;
    }
  });
  const items = await list();
  const id = idText ? Number(idText) : items.length ? items[0].id : null;
  if (id) await detail(id);
  return { destroy: () => areaMap && areaMap.remove() };
}
