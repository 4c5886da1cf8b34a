// 预警发布: disseminated warnings (/api/dissemination), who was told and who confirmed, and the
// response they set off (/api/response: transfer orders and records). Personal data is shown as the
// API returns it (masked for roles without personal_data).
import { api } from "./api.js";
import { COLOUR_HEX, LEVEL_COLOUR, chart, dialog, esc, fmtTime, levelBadge, loadCharts, num, toast, unitNames } from "./util.js";

export const KIND_ZH = { initial: "首发", update: "更新", lift: "解除" };
const TYPE_ZH = { site: "隐患点预警", regional: "区域气象风险预警" };
const AUDIENCE_ZH = { responsible: "责任人/监测人", official: "值班人员", department: "部门联系人", resident: "受威胁群众", group: "群组" };
const CHANNEL_ZH = { sms: "短信", voice: "语音", wecom: "企业微信", dingtalk: "钉钉", webhook: "接口", email: "邮件", inbox: "站内信" };
const MSG_ZH = { pending: "待发", sending: "发送中", sent: "已发送", delivered: "已送达", failed: "失败" };
const TASK_ZH = { open: "进行中", done: "已完成", may_return: "可返回", closed: "已关闭" };
const VIA_ZH = { link: "链接", code: "验证码", reply: "短信回复", api: "电话回访", voice: "语音按键" };

// Sent / delivered / confirmed / transferred of one warning version. `tasks` are the transfer orders in
// scope (GET /api/response/tasks?kind=transfer); their records are read for the people moved.
export async function warningSummary(issue, tasks) {
  const d = await api(`/api/dissemination/warnings/${issue.id}`);
  const c = { recipients: d.recipients, messages: d.messages, sent: 0, delivered: 0, failed: 0, pending: 0, confirmed: d.confirmed };
  for (const st of Object.values(d.by_channel || {})) {
    c.sent += (st.sent || 0) + (st.delivered || 0);
    c.delivered += st.delivered || 0;
    c.failed += st.failed || 0;
    c.pending += (st.pending || 0) + (st.sending || 0);
  }
  const mine = tasks.filter((t) => t.subject === issue.subject);
  const details = await Promise.all(mine.map((t) => api(`/api/response/tasks/${t.id}`)));
  c.orders = mine.length;
  c.ordered = mine.reduce((a, t) => a + (t.people || 0), 0);
  c.transferred = details.reduce((a, t) => a + t.transfers.reduce((b, r) => b + r.people, 0), 0);
  return { detail: d, counts: c, tasks: details };
}

export function summaryChart(el, c) {
  chart(el).setOption({
    tooltip: { trigger: "axis" }, grid: { left: 50, right: 20, bottom: 30, top: 20 },
    xAxis: { type: "category", data: ["接收人", "已发送(条)", "已送达(条)", "已确认(人)", "已转移(人)"] },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "bar", label: { show: true, position: "top" },
      data: [c.recipients, c.sent, c.delivered, c.confirmed, c.transferred].map((v, i) => ({
        value: v, itemStyle: { color: ["#5b6b7d", "#1f6fd1", "#27ae60", "#f07f1a", "#8e44ad"][i] } })) }],
  });
}

function issueRow(i, selected) {
  return `<tr data-issue="${i.id}" data-level="${i.level}" class="clickable${selected ? " selected" : ""}">
    <td>${levelBadge(i.level)}</td><td>${esc(i.title)}<br><span class="muted">${esc((i.townships || []).join("、"))}</span></td>
    <td>${esc(fmtTime(i.issued))}</td><td>${esc(KIND_ZH[i.kind] || i.kind)} · ${esc(TYPE_ZH[i.warning_type] || i.warning_type)}
    <span class="muted">第${i.version}版</span></td><td class="num">${num(i.recipients)}</td></tr>`;
}

export async function render(view, ctx, params) {
  view.innerHTML = `<div class="page" id="dissemination-page"><h2>预警发布</h2>
    <div class="toolbar"><button id="d-refresh">刷新</button><span id="d-summary" class="muted"></span></div>
    <div class="split"><div class="card list-pane"><h3>已发布预警</h3><table id="issue-table"></table></div>
    <div id="issue-detail" class="detail-pane"><div class="card muted">选择左侧的一条预警</div></div></div></div>`;
  const [tree] = await Promise.all([api("/api/units").catch(() => []), loadCharts()]);
  const towns = unitNames(tree);
  let issues = [];
  let selected = params && params[0] ? Number(params[0]) : null;

  const loadList = async () => {
    const r = await api("/api/dissemination/warnings", { params: { limit: 200 } });
    issues = r.items;
    view.querySelector("#d-summary").textContent = `共 ${r.total} 条预警发布记录`;
    if (!selected && issues.length) selected = issues[0].id;
    const t = view.querySelector("#issue-table");
    t.innerHTML = `<tr><th>级别</th><th>预警</th><th>发布时间</th><th>类别</th><th>接收人</th></tr>
      ${issues.map((i) => issueRow(i, i.id === selected)).join("") || "<tr><td colspan=5>暂无预警发布记录</td></tr>"}`;
    t.querySelectorAll("tr[data-issue]").forEach((tr) => tr.addEventListener("click", () => {
      selected = Number(tr.dataset.issue);
      t.querySelectorAll("tr.selected").forEach((x) => x.classList.remove("selected"));
      tr.classList.add("selected");
      history.replaceState(null, "", `#/dissemination/${selected}`);
      loadDetail();
    }));
  };

  const loadDetail = async () => {
    const pane = view.querySelector("#issue-detail");
    const issue = issues.find((i) => i.id === selected);
    if (!issue) {
      pane.innerHTML = `<div class="card ${selected ? "error" : "muted"}">${selected ? "预警不存在" : "暂无预警"}</div>`;
      return;
    }
    const [tasks, timeline, recipients, messages] = await Promise.all([
      api("/api/response/tasks", { params: { kind: "transfer", limit: 1000 } }),
      api(`/api/dissemination/warnings/${issue.id}/timeline`),
      api(`/api/dissemination/warnings/${issue.id}/recipients`, { params: { limit: 5000 } }),
      api(`/api/dissemination/warnings/${issue.id}/messages`, { params: { limit: 5000 } }),
    ]);
    const s = await warningSummary(issue, tasks.items);
    if (selected !== issue.id) return; // overtaken by another click
    const c = s.counts;
    const byRecipient = {};
    for (const m of messages.items) (byRecipient[m.recipient_id] ||= []).push(m);
    const colour = LEVEL_COLOUR[issue.level] || "none";
    pane.innerHTML = `<div class="card" id="issue-card" data-issue="${issue.id}" style="border-top:4px solid ${COLOUR_HEX[colour]}">
        <h3>${levelBadge(issue.level)} ${esc(issue.title)}</h3>
        <p class="muted">${esc(KIND_ZH[issue.kind] || issue.kind)} · 第${issue.version}版 · 发布 ${esc(fmtTime(issue.issued))}
        · CAP <a href="#" id="cap-link">${esc(issue.cap_identifier)}</a></p>
        <div class="kpis">${[["接收人", c.recipients, "人", "d-recipients"], ["已发送", c.sent, "条", "d-sent"], ["已送达", c.delivered, "条", "d-delivered"],
          ["待发", c.pending, "条", "d-pending"], ["失败", c.failed, "条", "d-failed"], ["已确认", c.confirmed, "人", "d-confirmed"],
          ["已转移", c.transferred, `/${num(c.ordered)} 人`, "d-transferred"]]
          .map(([k, v, u, id]) => `<div class="kpi" id="${id}">${esc(k)}<b>${num(v)}<small> ${esc(u)}</small></b></div>`).join("")}</div>
        <div class="chart" id="c-funnel" style="height:240px"></div></div>
      <div class="card"><h3>时间线（按乡镇）</h3><table id="timeline-table"><tr><th>乡镇</th><th>发布</th><th>首条送达</th>
        <th>责任人确认</th><th>全部确认</th><th>转移令</th><th>转移完成</th></tr>
        ${timeline.townships.map((x) => `<tr data-town="${x.township}"><td>${esc(towns[x.township] || x.township)}</td>
          <td>${esc(fmtTime(x.issued_ms))}</td><td>${esc(fmtTime(x.first_delivered_ms))}</td>
          <td>${x.responsible_confirmed}/${x.responsible}</td><td>${esc(fmtTime(x.all_responsible_confirmed_ms))}</td>
          <td>${x.transfer_orders}</td><td>${x.transfer_orders ? esc(fmtTime(x.transfer_complete_ms)) : "—"}</td></tr>`).join("") || "<tr><td colspan=7>无</td></tr>"}
        </table>${timeline.lifted_ms ? `<p class="muted">已于 ${esc(fmtTime(timeline.lifted_ms))} 解除</p>` : ""}</div>
      <div class="card"><h3>接收人（${num(recipients.total)}）</h3><div class="toolbar">
        <select id="r-filter"><option value="">全部</option><option value="unconfirmed">未确认</option><option value="confirmed">已确认</option></select></div>
        <div class="scroll"><table id="recipient-table"></table></div></div>
      <div class="card"><h3>转移令与转移记录</h3><div id="transfers"></div></div>`;
    summaryChart(pane.querySelector("#c-funnel"), c);
    pane.querySelector("#cap-link").addEventListener("click", async (ev) => {
      ev.preventDefault();
      const xml = await api(`/api/dissemination/warnings/${issue.id}/cap`);
      const w = window.open("", "_blank");
      if (w) w.document.body.innerText = xml;
    });
    const canConfirm = ctx.can("acknowledge");
    const drawRecipients = () => {
      const f = pane.querySelector("#r-filter").value;
      const rows = recipients.items.filter((r) => !f || (f === "confirmed") === !!r.confirmed);
      pane.querySelector("#recipient-table").innerHTML = `<tr><th>姓名</th><th>电话</th><th>类别</th><th>乡镇</th><th>原因</th><th>发送 / 送达</th><th>确认</th></tr>
        ${rows.map((r) => {
          const ms = byRecipient[r.id] || [];
          const delivered = ms.some((m) => m.status === "delivered");
          return `<tr data-recipient="${r.id}" data-confirmed="${r.confirmed ? 1 : 0}" data-delivered="${delivered ? 1 : 0}">
            <td>${esc(r.name || "—")}</td><td>${esc(r.phone || "无电话")}</td><td>${esc(AUDIENCE_ZH[r.audience] || r.audience)}</td>
            <td>${esc(towns[(r.unit_code || "").slice(0, 9)] || r.unit_code)}</td><td>${esc((r.reasons || []).join("；"))}</td>
            <td>${ms.map((m) => `<span class="msg msg-${esc(m.status)}" title="${esc(m.error || "")}">${esc(CHANNEL_ZH[m.channel] || m.channel)}：${esc(MSG_ZH[m.status] || m.status)}</span>`).join(" ") || "<span class='muted'>无消息</span>"}</td>
            <td>${r.confirmed ? `${esc(fmtTime(r.confirmed))} <span class="muted">${esc(VIA_ZH[r.confirmed_via] || r.confirmed_via || "")}</span>`
              : `未确认${canConfirm ? " <button class='secondary confirm'>回访确认</button>" : ""}`}${r.escalated ? " <span class='error'>已升级</span>" : ""}</td></tr>`;
        }).join("") || "<tr><td colspan=7>无</td></tr>"}`;
      pane.querySelectorAll("#recipient-table .confirm").forEach((b) => b.addEventListener("click", async () => {
        const id = b.closest("tr").dataset.recipient;
        try {
          const r = await api(`/api/dissemination/warnings/${issue.id}/recipients/${id}/confirm`, { method: "POST" });
          Object.assign(recipients.items.find((x) => String(x.id) === id), r);
          toast("已记录确认");
          drawRecipients();
        } catch (e) { toast(e.message, true); }
      }));
    };
    pane.querySelector("#r-filter").addEventListener("change", drawRecipients);
    drawRecipients();
    drawTransfers(pane.querySelector("#transfers"), s.tasks, towns, ctx, loadDetail);
  };

  view.querySelector("#d-refresh").addEventListener("click", async () => { await loadList(); await loadDetail(); });
  await loadList();
  await loadDetail();
  return null;
}

function drawTransfers(el, tasks, towns, ctx, reload) {
  if (!tasks.length) {
    el.innerHTML = `<p class="muted">本预警未下达转移令（橙色、红色预警下达）</p>`;
    return;
  }
  const canReport = ctx.can("report");
  el.innerHTML = tasks.map((t) => `<div class="task" data-task="${t.id}"><p><b>${esc(towns[t.unit_code] || t.unit_code)}</b> 转移令 #${t.id} ·
      ${esc(TASK_ZH[t.status] || t.status)} · 应转移 ${num(t.households)} 户 ${num(t.people)} 人 · 下达 ${esc(fmtTime(t.created))}
      ${t.completed ? ` · 完成 ${esc(fmtTime(t.completed))}` : ""}
      ${canReport && t.status === "open" ? "<button class='secondary add-transfer'>登记转移</button>" : ""}</p>
    <table><tr><th>户</th><th>人数</th><th>安置点</th><th>转移时间</th><th>登记人</th><th>返回</th></tr>
      ${t.transfers.map((r) => `<tr><td>${r.household_id ?? "—"}</td><td>${num(r.people)}</td><td>${esc(shelterName(t, r.shelter_id))}</td>
        <td>${esc(fmtTime(r.moved))}</td><td>${esc(r.recorded_by)}</td><td>${esc(fmtTime(r.returned))}</td></tr>`).join("") || "<tr><td colspan=6>尚无转移记录</td></tr>"}
    </table></div>`).join("");
  el.querySelectorAll(".add-transfer").forEach((b) => b.addEventListener("click", async () => {
    const t = tasks.find((x) => String(x.id) === b.closest(".task").dataset.task);
    const households = (t.plan && t.plan.households) || [];
    const v = await dialog(`登记转移（转移令 #${t.id}）`, `<label>户<select name="household_id"><option value="">（不指定）</option>
        ${households.map((h) => `<option value="${h.household_id}">${esc(h.head || h.household_id)}（${num(h.people)} 人）</option>`).join("")}</select></label>
      <label>人数<input name="people" type="number" min="1" value="1" required></label>`, "登记");
    if (!v) return;
    const h = households.find((x) => String(x.household_id) === v.household_id);
    try {
      await api(`/api/response/tasks/${t.id}/transfers`, { method: "POST", json: {
        household_id: h ? h.household_id : null, shelter_id: h && h.shelter_id ? h.shelter_id : null, people: Number(v.people) } });
      toast("已登记");
      reload();
    } catch (e) { toast(e.message, true); }
  }));
}

function shelterName(task, id) {
  if (id === null || id === undefined) return "—";
  const s = ((task.plan && task.plan.shelters) || []).find((x) => x.id === id);
  return s ? s.name : `#${id}`;
}
