// 巡查排查: today's zero reports (缺报乡镇 highlighted), patrols and abnormal results, quick reports
// (灾险情速报), the register's gaps per township (台账核查) and the two cards (两卡) as PDFs.
// Everything through the scoped /api/fieldwork routes; names and phones as the API masks them.
import { api, download } from "./api.js";
import { HAZARD_ZH, esc, fmtChina, num, toast, todayChina, townshipNames } from "./util.js";

const PATROL_KIND_ZH = { pre_season: "汛前排查", in_season: "汛中巡查", post_season: "汛后核查", warning_check: "预警核查" };
const EVENT_KIND_ZH = { disaster: "灾情", danger: "险情" };
const EVENT_STATUS_ZH = { open: "处置中", closed: "已结束" };

export async function render(view, ctx) {
  view.innerHTML = `<div class="page" id="fieldwork-page"><h2>巡查排查</h2>
    <div class="toolbar"><label>日期 <input type="date" id="f-date" value="${todayChina()}"></label>
      <button id="f-refresh">刷新</button></div>
    <div class="card"><h3>每日零报告</h3><div class="kpis" id="zero-kpis"></div><table id="zero-table" style="margin-top:8px"></table>
      <div id="reminders"></div></div>
    <div class="grid">
      <div class="card"><h3>近期巡查</h3><div class="toolbar"><label><input type="checkbox" id="p-abnormal"> 仅异常</label>
        <span id="p-summary" class="muted"></span></div><div class="scroll"><table id="patrol-table"></table></div></div>
      <div class="card"><h3>灾险情速报</h3><div class="scroll"><table id="event-table"></table></div></div>
    </div>
    <div class="card"><h3>台账核查与两卡</h3><div class="toolbar">
      <button class="secondary" id="hy-csv">导出核查清单 CSV</button><button class="secondary" id="hy-xlsx">导出 Excel</button></div>
      <table id="hygiene-table"></table><div id="hygiene-items"></div></div></div>`;
  const [tree, lists] = await Promise.all([api("/api/units").catch(() => []),
    Promise.all(Object.keys(HAZARD_ZH).map((t) => api(`/api/fieldwork/checklists/${t}`).catch(() => [])))]);
  const towns = townshipNames(tree);
  const signZh = Object.fromEntries(lists.flat().map((i) => [i.key, i.zh]));
  const dateEl = view.querySelector("#f-date");

  const loadZero = async () => {
    const st = await api("/api/fieldwork/zero-reports/status", { params: { date: dateEl.value } });
    view.querySelector("#zero-kpis").innerHTML = [
      ["乡镇", `${num(st.townships)} 个`, "zr-townships"], ["应报", `${num(st.required)} 次`, "zr-required"],
      ["已报", `${num(st.reported)} 次`, "zr-reported"], ["已报齐", `${num(st.complete)} 个`, "zr-complete"],
      ["缺报乡镇", `${num(st.missing.length)} 个`, "zr-missing"], ["应急响应", `${num(st.elevated)} 个`, "zr-elevated"],
    ].map(([k, v, id]) => `<div class="kpi" id="${id}">${esc(k)}<b>${v}</b></div>`).join("");
    const missing = Object.fromEntries(st.missing.map((m) => [m.code, m]));
    const codes = Object.keys(towns).length ? Object.keys(towns) : st.missing.map((m) => m.code);
    const rows = codes.map((code) => {
      const m = missing[code];
      const state = m ? (m.overdue ? "逾期未报" : "待报") : st.in_season ? "已报齐" : "非汛期，无需报告";
      return `<tr data-town="${code}" class="${m ? (m.overdue ? "missing overdue" : "missing") : ""}">
        <td>${esc(towns[code] || (m && m.name) || code)}</td><td>${m ? `${m.reported}/${m.required}` : "—"}</td>
        <td>${esc(state)}${m && m.elevated ? " <span class='level level-orange'>响应中</span>" : ""}${m && m.reminded_at ? ` <small class="reminded">已提醒 ${esc(fmtChina(m.reminded_at))}</small>` : ""}</td>
        <td>${m && m.next_deadline ? esc(fmtChina(m.next_deadline)) : "—"}</td>
        <td><button class="secondary card-pdf" data-kind="sites">隐患点明白卡</button>
            <button class="secondary card-pdf" data-kind="households">避险明白卡</button></td></tr>`;
    });
    const t = view.querySelector("#zero-table");
    t.innerHTML = `<tr><th>乡镇</th><th>已报/应报</th><th>状态（${esc(st.date)}${st.in_season ? "，汛期" : "，非汛期"}）</th><th>下一截止</th><th>两卡 PDF</th></tr>
      ${rows.join("") || "<tr><td colspan=5>无</td></tr>"}`;
    t.querySelectorAll(".card-pdf").forEach((b) => b.addEventListener("click", async () => {
      const code = b.closest("tr").dataset.town;
      b.disabled = true;
      try {
        await download(`/api/fieldwork/cards/townships/${code}/${b.dataset.kind}`, `${towns[code] || code}-${b.dataset.kind === "sites" ? "隐患点明白卡" : "避险明白卡"}.pdf`);
      } catch (e) { toast(e.message, true); } finally { b.disabled = false; }
    }));
    if (ctx.can("write")) {
      const rem = await api("/api/fieldwork/zero-reports/reminders").catch(() => []);
      view.querySelector("#reminders").innerHTML = rem.length ? `<h4>待提醒</h4><table id="reminder-table"><tr><th>乡镇</th><th>提醒内容</th><th>提醒对象</th></tr>
        ${rem.map((r) => `<tr class="${r.overdue ? "missing overdue" : "missing"}"><td>${esc(r.township_name)}</td><td>${esc(r.text)}</td>
          <td>${r.contacts.map((c) => `${esc(c.name)} ${esc(c.phone)}`).join("<br>") || "—"}</td></tr>`).join("")}</table>` : "";
    }
  };

  const loadPatrols = async () => {
    const abnormal = view.querySelector("#p-abnormal").checked;
    const r = await api("/api/fieldwork/patrols", { params: { limit: 100, result: abnormal ? "abnormal" : "" } });
    view.querySelector("#p-summary").textContent = `共 ${r.total} 次`;
    view.querySelector("#patrol-table").innerHTML = `<tr><th>时间</th><th>隐患点</th><th>类别</th><th>结果</th><th>巡查人</th><th>说明</th></tr>
      ${r.items.map((p) => {
        const signs = Object.entries(p.checklist || {}).filter(([, v]) => v).map(([k]) => signZh[k] || k);
        return `<tr data-patrol="${p.id}" data-result="${p.result}" class="${p.result === "abnormal" ? "abnormal" : ""}">
          <td>${esc(fmtChina(p.patrolled_at))}</td><td><a href="#/site/${p.site_id}">#${p.site_id}</a> <span class="muted">${esc(towns[p.unit_code.slice(0, 9)] || "")}</span></td>
          <td>${esc(PATROL_KIND_ZH[p.kind] || p.kind)}</td>
          <td>${p.result === "abnormal" ? "<b class='error'>异常</b>" : "正常"}${p.far_from_site ? " <span class='error' title='定位距隐患点过远'>偏离</span>" : ""}</td>
          <td>${esc(p.reporter)}</td><td>${esc(p.remarks || "")}${signs.length ? `<br><span class="muted">${esc(signs.join("、"))}</span>` : ""}
          ${p.photos && p.photos.length ? `<br><span class="muted">${p.photos.length} 张照片</span>` : ""}</td></tr>`;
      }).join("") || "<tr><td colspan=6>暂无巡查记录</td></tr>"}`;
  };

  const loadEvents = async () => {
    const r = await api("/api/fieldwork/events", { params: { limit: 100 } });
    view.querySelector("#event-table").innerHTML = `<tr><th>发生时间</th><th>类别</th><th>地点</th><th>伤亡/失踪</th><th>威胁/转移</th><th>状态</th></tr>
      ${r.items.map((e) => `<tr data-event="${e.id}" data-kind="${e.kind}">
        <td>${esc(fmtChina(e.occurred_at))}</td><td>${esc(EVENT_KIND_ZH[e.kind] || e.kind)} · ${esc(HAZARD_ZH[e.hazard_type] || e.hazard_type)}</td>
        <td>${esc(towns[e.unit_code.slice(0, 9)] || "")} ${esc(e.place)}${e.site_id ? ` <a href="#/site/${e.site_id}">隐患点</a>` : ""}</td>
        <td>${e.dead}/${e.injured}/${e.missing}</td><td>${num(e.threatened_people)}/${num(e.transferred_people)}</td>
        <td>${esc(EVENT_STATUS_ZH[e.status] || e.status)} <span class="muted">${e.versions_count > 1 ? `续报${e.versions_count - 1}次` : "速报"}</span></td></tr>`).join("")
        || "<tr><td colspan=6>暂无灾险情报告</td></tr>"}`;
  };

  const loadHygiene = async () => {
    const r = await api("/api/fieldwork/hygiene");
    const kinds = [...new Set(r.items.map((i) => i.kind))];
    const kindZh = Object.fromEntries(r.items.map((i) => [i.kind, i.kind_zh]));
    const t = view.querySelector("#hygiene-table");
    t.innerHTML = `<tr><th>乡镇</th>${kinds.map((k) => `<th>${esc(kindZh[k])}</th>`).join("")}<th></th></tr>
      ${r.townships.map((x) => `<tr data-hygiene="${x.code}"><td>${esc(x.name || towns[x.code] || x.code)}</td>
        ${kinds.map((k) => `<td class="${x[k] ? "warn" : ""}">${num(x[k] || 0)}</td>`).join("")}
        <td><button class="secondary hy-show">明细</button></td></tr>`).join("") || `<tr><td colspan="${kinds.length + 2}">台账无缺项</td></tr>`}`;
    t.querySelectorAll(".hy-show").forEach((b) => b.addEventListener("click", () => {
      const code = b.closest("tr").dataset.hygiene;
      const items = r.items.filter((i) => i.township === code);
      view.querySelector("#hygiene-items").innerHTML = `<h4>${esc(towns[code] || code)}：${items.length} 项</h4><table>
        <tr><th>问题</th><th>对象</th><th>说明</th></tr>${items.map((i) => `<tr><td>${esc(i.kind_zh)}</td>
        <td>${i.record === "hazard_site" ? `<a href="#/site/${i.record_id}">${esc(i.label)}</a>` : esc(i.label)}</td><td>${esc(i.detail || "")}</td></tr>`).join("")}</table>`;
    }));
  };

  const exportHygiene = (fmt) => download(`/api/fieldwork/hygiene?format=${fmt}`).catch((e) => toast(e.message, true));
  view.querySelector("#hy-csv").addEventListener("click", () => exportHygiene("csv"));
  view.querySelector("#hy-xlsx").addEventListener("click", () => exportHygiene("xlsx"));
  view.querySelector("#p-abnormal").addEventListener("change", loadPatrols);
  dateEl.addEventListener("change", loadZero);
  const all = () => Promise.all([loadZero(), loadPatrols(), loadEvents(), loadHygiene()]);
  view.querySelector("#f-refresh").addEventListener("click", all);
  await all();
  return null;
}
