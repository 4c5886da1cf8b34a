// 数据导入: upload a register file; a rejected file's per-row problems are listed in the page.
import { api } from "./api.js";
import { esc, fmtTime, num, toast } from "./util.js";

const KINDS = { sites: "隐患点", risk_zones: "风险区", households: "受威胁户", shelters: "避险点", units: "行政区划" };

export async function render(view) {
  view.innerHTML = `<div class="page"><h2>数据导入</h2><div class="card"><form id="import-form">
    <div class="toolbar"><label>类型 <select name="kind" id="import-kind">${Object.entries(KINDS).map(([k, v]) => `<option value="${k}">${v}</option>`).join("")}</select></label>
    <label>文件（CSV、XLSX、GeoJSON、GeoPackage、Shapefile zip）<input type="file" name="file" id="import-file" required></label></div>
    <div class="toolbar"><label>坐标系 <input name="source_crs" placeholder="如 EPSG:4526（默认 WGS84/CGCS2000）"></label>
    <label><input type="checkbox" name="skip_bad" id="import-skip"> 跳过错误行，导入其余行</label>
    <button type="submit" id="import-submit">导入</button></div></form>
    <div id="import-result"></div></div>
    <div class="card"><h3>导入批次</h3><table id="batch-table"></table></div></div>`;
  const batches = async () => {
    const r = await api("/api/import/batches", { params: { limit: 20 } });
    view.querySelector("#batch-table").innerHTML = `<tr><th>编号</th><th>类型</th><th>文件</th><th>状态</th><th>时间</th><th></th></tr>
      ${r.items.map((b) => `<tr><td>${b.id}</td><td>${esc(KINDS[b.kind] || b.kind)}</td><td>${esc(b.filename || "")}</td><td>${esc(b.status)}</td>
      <td>${esc(fmtTime(b.created_at || b.started_at))}</td><td><button class="secondary rej" data-batch="${b.id}">错误行</button></td></tr>`).join("")}`;
    view.querySelectorAll(".rej").forEach((btn) => btn.addEventListener("click", async () => {
      const rr = await api(`/api/import/batches/${btn.dataset.batch}/rejections`, { params: { limit: 500 } });
      showProblems(rr.items, `批次 ${btn.dataset.batch} 的错误行（${num(rr.total)}）`);
    }));
  };
  const showProblems = (problems, title) => {
    view.querySelector("#import-result").innerHTML = `<h3 class="error">${esc(title)}</h3><table id="problem-table"><tr><th>行</th><th>字段</th><th>问题</th><th>值</th></tr>
      ${problems.map((p) => `<tr><td>${esc(p.row)}</td><td>${esc(p.field || "")}</td><td>${esc(p.reason || p.message || "")}</td><td>${esc(p.value ?? "")}</td></tr>`).join("")}</table>`;
  };
  view.querySelector("#import-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const form = new FormData();
    form.append("file", f.file.files[0]);
    if (f.source_crs.value) form.append("source_crs", f.source_crs.value);
    form.append("skip_bad", f.skip_bad.checked ? "true" : "false");
    try {
      const r = await api(`/api/import/${f.kind.value}`, { method: "POST", form });
      view.querySelector("#import-result").innerHTML = `<p id="import-ok">导入完成：${esc(JSON.stringify(r))}</p>`;
      toast("导入完成");
    } catch (e) {
      if (e.body && e.body.problems) showProblems(e.body.problems, `文件被拒绝：${e.message}（共 ${e.body.problems.length} 处问题）`);
      else toast(e.message, true);
    }
    batches();
  });
  await batches().catch(() => null);
  return null;
}
