// 预警处置: alerts in scope, acknowledge with a comment, silence a site or device (maintenance window).
import { api } from "./api.js";
import { dialog, esc, fmtTime, levelBadge, toast } from "./util.js";

export async function acknowledge(alert) {
  const v = await dialog(`确认预警：${alert.site_name || alert.kind_zh}`,
    `<label>处置意见<textarea name="comment" id="ack-comment" rows="3" placeholder="已通知监测员现场核查…"></textarea></label>`, "确认");
  if (!v) return false;
  try {
    await api(`/api/alerts/${alert.id}/acknowledge`, { method: "POST", json: { comment: v.comment || null } });
    toast("已确认");
    return true;
  } catch (e) {
    toast(e.message, true);
    return false;
  }
}

// Why the alert stands: each term of its rule with the value now against the threshold (alert.reason.terms).
export function reasonText(reason) {
  const terms = (reason && Array.isArray(reason.terms)) ? reason.terms : [];
  const parts = terms.slice(0, 3).map((t) => `${t.term || t.series}：${t.value ?? "—"}（阈值 ${t.op || ""}${t.threshold ?? ""}）`);
  const held = reason && reason.held_by_hysteresis ? "；回差保持" : "";
  const persisted = reason && reason.persistence ? `；${reason.persistence}` : "";
  return parts.length ? `<br><span class="muted reason">${esc(parts.join("；") + persisted + held)}</span>` : "";
}

// The inverse-velocity (Fukuzono) time-of-failure forecast with its fit quality (alert.forecast).
export function forecastText(f) {
  if (!f || f.t_failure_ms == null) return "";
  const r2 = f.r2 != null ? `，拟合优度 R²=${Number(f.r2).toFixed(2)}` : "";
  const n = f.n_points != null ? `，${f.n_points} 个点` : "";
  const china = new Date(f.t_failure_ms + 8 * 3_600_000).toISOString().slice(0, 16).replace("T", " ");  // 北京时间
  return `<br><span class="error forecast">预测失稳时间 ${esc(china + r2 + n)}</span>`;
}

export async function render(view, ctx) {
  view.innerHTML = `<div class="page"><h2>预警处置</h2><div class="toolbar">
    <select id="a-status"><option value="open">进行中</option><option value="closed">已结束</option><option value="">全部</option></select>
    <select id="a-level"><option value="1">蓝色及以上</option><option value="2">黄色及以上</option><option value="3">橙色及以上</option>
    <option value="4">红色</option><option value="0">含设备告警</option></select>
    <button id="a-refresh">刷新</button><span id="a-summary" class="muted"></span></div>
    <table id="alert-table"></table>
    <div class="card" style="margin-top:12px"><h3>静默时段（维护窗口）</h3><table id="silence-table"></table></div></div>`;
  const canAck = ctx.can("acknowledge"), canWarn = ctx.can("warn");
  const load = async () => {
    const r = await api("/api/alerts", { params: { status: view.querySelector("#a-status").value, min_level: view.querySelector("#a-level").value, limit: 200 } });
    const o = r.open_by_level;
    view.querySelector("#a-summary").textContent = `共 ${r.total} 条；进行中：红色 ${o.red}，橙色 ${o.orange}，黄色 ${o.yellow}，蓝色 ${o.blue}`;
    const table = view.querySelector("#alert-table");
    table.innerHTML = `<tr><th>级别</th><th>隐患点</th><th>类别 / 规则</th><th>开始</th><th>更新</th><th>状态</th><th>确认</th><th></th></tr>
      ${r.items.map((a) => `<tr data-alert="${a.id}" data-level="${a.level}" data-site="${a.site_id ?? ""}" data-rule="${esc(a.rule_id || a.kind)}">
        <td>${levelBadge(a.level, a.level_zh)}</td>
        <td>${a.site_id ? `<a href="#/site/${a.site_id}">${esc(a.site_name)}</a>` : esc(`设备 ${a.device_id}`)}</td>
        <td>${esc(a.kind_zh)} · ${esc(a.rule_name || "")}${reasonText(a.reason)}${forecastText(a.forecast)}</td>
        <td>${esc(fmtTime(a.opened))}</td><td>${esc(fmtTime(a.updated))}</td><td>${a.status === "open" ? "进行中" : "已结束"}</td>
        <td class="ack-cell">${a.acknowledged ? `${esc(a.acknowledged_by)}：${esc(a.ack_comment || "")}<br><span class="muted">${esc(fmtTime(a.acknowledged))}</span>` : "未确认"}</td>
        <td>${canAck && a.status === "open" ? `<button class="ack">确认</button>` : ""}
            ${canWarn && a.status === "open" ? `<button class="secondary silence">静默</button>` : ""}
            <button class="secondary detail">过程</button></td></tr>`).join("") || "<tr><td colspan=8>无</td></tr>"}`;
    const byId = Object.fromEntries(r.items.map((a) => [a.id, a]));
    table.querySelectorAll("tr[data-alert]").forEach((tr) => {
      const a = byId[tr.dataset.alert];
      tr.querySelector(".ack")?.addEventListener("click", async () => { if (await acknowledge(a)) load(); });
      tr.querySelector(".silence")?.addEventListener("click", async () => {
        const v = await dialog("静默（维护期间不再产生新预警）", `<label>时长（小时）<input name="hours" type="number" value="4" min="1" max="2160"></label>
          <label>原因<input name="reason" required minlength="2" placeholder="设备检修"></label>`, "静默");
        if (!v) return;
        const target = a.site_id ? { site_id: a.site_id } : { device_id: a.device_id };
        try {
          await api("/api/alerts/silences", { method: "POST", json: { ...target, end: String(Date.now() + Number(v.hours) * 3_600_000), reason: v.reason } });
          toast("已设置静默");
          loadSilences();
        } catch (e) { toast(e.message, true); }
      });
      tr.querySelector(".detail").addEventListener("click", async () => {
        const next = tr.nextElementSibling;
        if (next && next.classList.contains("history")) { next.remove(); return; }
        const d = await api(`/api/alerts/${a.id}`);
        tr.insertAdjacentHTML("afterend", `<tr class="history"><td colspan="8"><table>${d.history.map((e) => `<tr><td>${esc(fmtTime(e.t))}</td><td>${esc(e.kind)}</td>
          <td>${e.level_from ?? ""} → ${e.level_to ?? ""}</td><td>${esc(e.actor || "")}</td><td>${esc(e.comment || "")}${reasonText(e.reason)}</td></tr>`).join("")}</table></td></tr>`);
      });
    });
  };
  const loadSilences = async () => {
    const r = await api("/api/alerts/silences");
    const t = view.querySelector("#silence-table");
    t.innerHTML = `<tr><th>对象</th><th>开始</th><th>结束</th><th>原因</th><th>设置人</th><th></th></tr>${r.items.map((s) => `<tr data-silence="${s.id}">
      <td>${s.site_id ? `隐患点 <a href="#/site/${s.site_id}">${s.site_id}</a>` : `设备 ${s.device_id}`}</td><td>${esc(fmtTime(s.start))}</td><td>${esc(fmtTime(s.end))}</td>
      <td>${esc(s.reason)}</td><td>${esc(s.created_by)}</td><td>${s.cancelled ? "已取消" : canWarn ? "<button class='secondary cancel-silence'>取消</button>" : ""}</td></tr>`).join("") || "<tr><td colspan=6>无</td></tr>"}`;
    t.querySelectorAll(".cancel-silence").forEach((b) => b.addEventListener("click", async () => {
      try { await api(`/api/alerts/silences/${b.closest("tr").dataset.silence}`, { method: "DELETE" }); loadSilences(); } catch (e) { toast(e.message, true); }
    }));
  };
  view.querySelector("#a-refresh").addEventListener("click", load);
  view.querySelector("#a-status").addEventListener("change", load);
  view.querySelector("#a-level").addEventListener("change", load);
  await Promise.all([load(), loadSilences()]);
  const timer = setInterval(load, 30_000);
  return { destroy: () => clearInterval(timer) };
}
