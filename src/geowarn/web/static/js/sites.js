// 隐患点列表: the register in scope, searchable, each row linking to its page.
import { api } from "./api.js";
import { HAZARD_ZH, STATUS_ZH, esc, num } from "./util.js";

export async function render(view) {
  view.innerHTML = `<div class="page"><h2>隐患点</h2><div class="toolbar">
    <input id="q" placeholder="名称、编号或位置"><select id="type"><option value="">全部灾种</option>
    ${Object.entries(HAZARD_ZH).map(([k, v]) => `<option value="${k}">${v}</option>`).join("")}</select>
    <button id="search">查询</button><span class="muted" id="total"></span></div>
    <table id="site-table"></table><div class="toolbar"><button class="secondary" id="prev">上一页</button>
    <button class="secondary" id="next">下一页</button></div></div>`;
  let offset = 0;
  const load = async () => {
    const r = await api("/api/sites", { params: { q: view.querySelector("#q").value, hazard_type: view.querySelector("#type").value, limit: 50, offset } });
    view.querySelector("#total").textContent = `共 ${num(r.total)} 处`;
    view.querySelector("#site-table").innerHTML = `<tr><th>编号</th><th>名称</th><th>灾种</th><th>状态</th><th>受威胁</th><th>位置</th></tr>
      ${r.items.map((s) => `<tr><td>${esc(s.code)}</td><td><a href="#/site/${s.id}">${esc(s.name)}</a></td><td>${esc(HAZARD_ZH[s.hazard_type] || s.hazard_type)}</td>
      <td>${esc(STATUS_ZH[s.status] || s.status)}</td><td>${num(s.threatened_households)} 户 ${num(s.threatened_people)} 人</td><td>${esc(s.location_text || "")}</td></tr>`).join("")}`;
    view.querySelector("#prev").disabled = offset === 0;
    view.querySelector("#next").disabled = offset + 50 >= r.total;
  };
  view.querySelector("#search").addEventListener("click", () => { offset = 0; load(); });
  view.querySelector("#prev").addEventListener("click", () => { offset = Math.max(0, offset - 50); load(); });
  view.querySelector("#next").addEventListener("click", () => { offset += 50; load(); });
  await load();
  return null;
}
