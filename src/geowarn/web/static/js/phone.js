// 监测员 (phone-sized): my open alerts with a big confirm button, and my sites.
import { api } from "./api.js";
import { acknowledge } from "./alerts.js";
import { HAZARD_ZH, esc, fmtTime, levelBadge, num } from "./util.js";

export async function render(view, ctx) {
  view.innerHTML = `<div class="page phone-list"><h2>我的预警</h2><div id="my-alerts"></div><h2>我的隐患点</h2><div id="my-sites"></div></div>`;
  const load = async () => {
    const r = await api("/api/alerts", { params: { status: "open", min_level: 1, limit: 100 } });
    const box = view.querySelector("#my-alerts");
    box.innerHTML = r.items.map((a) => `<div class="item" data-alert="${a.id}" data-level="${a.level}">${levelBadge(a.level, a.level_zh)}
      <b>${esc(a.site_name || "")}</b><div class="muted">${esc(a.rule_name || a.kind_zh)} · ${esc(fmtTime(a.updated))}</div>
      ${a.acknowledged ? `<div>已确认：${esc(a.ack_comment || "")}</div>` : ctx.can("acknowledge") ? `<button class="ack">确认收到</button>` : ""}
      </div>`).join("") || "<p class='muted'>当前没有预警</p>";
    const byId = Object.fromEntries(r.items.map((a) => [a.id, a]));
    box.querySelectorAll(".ack").forEach((b) => b.addEventListener("click", async () => {
      if (await acknowledge(byId[b.closest(".item").dataset.alert])) load();
    }));
  };
  const sites = await api("/api/sites", { params: { limit: 100 } });
  view.querySelector("#my-sites").innerHTML = sites.items.map((s) => `<div class="item"><a href="#/site/${s.id}"><b>${esc(s.name)}</b></a>
    <div class="muted">${esc(HAZARD_ZH[s.hazard_type] || s.hazard_type)} · 威胁 ${num(s.threatened_people)} 人</div><div>${esc(s.location_text || "")}</div></div>`).join("")
    || "<p class='muted'>无</p>";
  await load();
  const timer = setInterval(load, 30_000);
  return { destroy: () => clearInterval(timer) };
}
