// 台账编辑 on the site page: the site's own fields with its responsible person, monitor and threat
// counts; its threatened households (受威胁户) and their members; the risk zones (风险区) it lies in.
// Every write goes through the scoped, audited API; nothing is deleted — a household leaves the site
// (site_id → null) and stays in the register. Personal data the role may not see is never put in a
// form: such fields start empty ("留空不修改") and only fields the officer changed are sent.
import { api } from "./api.js";
import { changed, fieldErrors, formDialog, invalid, numOrNull, textOrNull } from "./forms.js";
import { MODE_ZH, STABILITY_ZH, esc, num, toast } from "./util.js";

export const GRADE_ZH = { high: "高", medium: "中", low: "低" };
const MASKED = "已脱敏，留空不修改";

function options(map, value) {
  return Object.entries(map).map(([k, v]) => `<option value="${esc(k)}" ${k === value ? "selected" : ""}>${esc(v)}</option>`).join("");
}

// Items of the caller's scope, those of the site's township first (an <optgroup> each).
function grouped(items, town, label, selected) {
  const opt = (x) => `<option value="${x.id}" ${x.id === selected ? "selected" : ""}>${esc(label(x))}</option>`;
  const near = items.filter((x) => town && x.unit_code.startsWith(town));
  const far = items.filter((x) => !(town && x.unit_code.startsWith(town)));
  if (!near.length || !far.length) return items.map(opt).join("");
  return `<optgroup label="本乡镇">${near.map(opt).join("")}</optgroup><optgroup label="其他">${far.map(opt).join("")}</optgroup>`;
}

async function persons(role) {
  const r = await api("/api/persons", { params: { role, active: true, limit: 1000 } }).catch(() => ({ items: [] }));
  return r.items;
}

// --- the site's own fields ------------------------------------------------------------------

export async function editSite(s) {
  const [responsible, monitors] = await Promise.all([persons("responsible"), persons("monitor")]);
  const keep = (list, p) => (p && !list.some((x) => x.id === p.id) ? [{ ...p, unit_code: s.unit_code }, ...list] : list);
  const who = (p) => `${p.name}${p.title ? `（${p.title}）` : ""}`;
  const personSelect = (name, list, current) => `<select name="${name}"><option value="">—</option>
    ${grouped(keep(list, current), s.township_code, who, current ? current.id : null)}</select>`;
  const fields = `<label>名称<input name="name" value="${esc(s.name)}" required></label>
    <label>位置<input name="location_text" value="${esc(s.location_text || "")}"></label>
    <div class="row2"><label>稳定性<select name="stability"><option value="">—</option>${options(STABILITY_ZH, s.stability)}</select></label>
    <label>监测方式<select name="monitoring_mode">${options(MODE_ZH, s.monitoring_mode)}</select></label></div>
    <div class="row2"><label>防灾责任人${personSelect("responsible_person_id", responsible, s.responsible_person)}</label>
    <label>监测员${personSelect("monitor_id", monitors, s.monitor)}</label></div>
    <div class="row3"><label>威胁户数<input name="threatened_households" type="number" min="0" step="1" value="${s.threatened_households ?? ""}"></label>
    <label>威胁人数<input name="threatened_people" type="number" min="0" step="1" value="${s.threatened_people ?? ""}"></label>
    <label>威胁财产（万元）<input name="threatened_property_wan" type="number" min="0" step="any" value="${s.threatened_property_wan ?? ""}"></label></div>
    <label>备注<textarea name="remarks" rows="2">${esc(s.remarks || "")}</textarea></label>`;
  const before = {
    name: s.name, location_text: s.location_text || null, stability: s.stability || null, monitoring_mode: s.monitoring_mode,
    responsible_person_id: s.responsible_person_id ?? null, monitor_id: s.monitor_id ?? null,
    threatened_households: s.threatened_households, threatened_people: s.threatened_people,
    threatened_property_wan: s.threatened_property_wan, remarks: s.remarks || null,
  };
  return formDialog("编辑隐患点", fields, {
    wide: true,
    submit: async (v) => {
      const after = {
        name: textOrNull(v.name), location_text: textOrNull(v.location_text), stability: v.stability || null,
        monitoring_mode: v.monitoring_mode, responsible_person_id: numOrNull(v.responsible_person_id), monitor_id: numOrNull(v.monitor_id),
        threatened_households: numOrNull(v.threatened_households), threatened_people: numOrNull(v.threatened_people),
        threatened_property_wan: numOrNull(v.threatened_property_wan), remarks: textOrNull(v.remarks),
      };
      const diff = changed(before, after);
      if (!Object.keys(diff).length) return "unchanged";
      return api(`/api/sites/${s.id}`, { method: "PATCH", json: { version: s.version, ...diff } });
    },
  });
}

// --- threatened households ------------------------------------------------------------------

function residentRow(r, i, personal) {
  const name = personal ? esc(r.name || "") : "";
  const phone = personal ? esc(r.phone || "") : "";
  const hint = personal || !r.id ? "" : `placeholder="${MASKED}"`;
  return `<tr data-row="${i}" ${r.id ? `data-resident="${r.id}"` : ""}>
    <td><input name="r${i}.name" value="${name}" ${hint} ${r.id ? "" : `placeholder="姓名"`}></td>
    <td><input name="r${i}.relation" value="${esc(r.relation || "")}" size="5"></td>
    <td><input name="r${i}.phone" value="${phone}" ${hint} size="12"></td>
    <td><label class="inline"><input type="checkbox" name="r${i}.vulnerable" ${r.vulnerable ? "checked" : ""}>老幼病残</label></td></tr>`;
}

// The add/edit form of a household; resolves with the saved household, or null.
export async function editHousehold(site, household, shelters, personal) {
  const x = household || { code: "", size: 1, lon: site.lon, lat: site.lat, residents: [], shelter_id: null, address: site.location_text };
  const pv = (value) => (personal ? esc(value || "") : "");
  const hint = household && !personal ? `placeholder="${MASKED}"` : "";
  const shelterLabel = (sh) => `${sh.name}（容纳 ${sh.capacity} 人）`;
  let rows = x.residents.map((r) => ({ ...r }));
  const fields = `${household ? `<p class="muted">户编号 ${esc(x.code)}</p>`
    : `<label>户编号<input name="code" value="${esc(`${site.code}-H`)}" required></label>`}
    <div class="row2"><label>户主<input name="head_name" value="${pv(x.head_name)}" ${hint} ${household ? "" : "required"}></label>
    <label>电话<input name="phone" value="${pv(x.phone)}" ${hint} inputmode="tel"></label></div>
    <div class="row2"><label>身份证号<input name="id_number" value="${pv(x.id_number)}" ${hint}></label>
    <label>户人数<input name="size" type="number" min="1" step="1" value="${x.size ?? ""}"></label></div>
    <label>住址<input name="address" value="${esc(x.address || "")}"></label>
    <div class="row2"><label>经度<input name="lon" type="number" step="any" value="${x.lon}"></label>
    <label>纬度<input name="lat" type="number" step="any" value="${x.lat}"></label></div>
    <label>避险点<select name="shelter_id"><option value="">未指定</option>
      ${grouped(shelters, site.township_code, shelterLabel, x.shelter_id)}</select></label>
    <h4>家庭成员</h4><table class="residents"><tr><th>姓名</th><th>关系</th><th>电话</th><th></th></tr>
      ${rows.map((r, i) => residentRow(r, i, personal)).join("")}</table>
    <button type="button" class="secondary add-resident">添加成员</button>`;
  const before = household
    ? { head_name: x.head_name, phone: x.phone, id_number: x.id_number, size: x.size, address: x.address || null,
        lon: x.lon, lat: x.lat, shelter_id: x.shelter_id ?? null }
    : {};
  let saved = household;
  return formDialog(household ? "编辑受威胁户" : "新增受威胁户", fields, {
    wide: true,
    onOpen: (form) => {
      form.querySelector(".add-resident").addEventListener("click", () => {
        rows.push({ relation: "", vulnerable: false });
        form.querySelector("table.residents tbody").insertAdjacentHTML("beforeend", residentRow(rows[rows.length - 1], rows.length - 1, personal));
      });
    },
    submit: async (v) => {
      const after = {
        size: numOrNull(v.size), address: textOrNull(v.address), lon: numOrNull(v.lon), lat: numOrNull(v.lat),
        shelter_id: numOrNull(v.shelter_id),
      };
      // Masked fields left empty stay as they are; the others may be cleared.
      for (const k of ["head_name", "phone", "id_number"]) {
        const val = textOrNull(v[k]);
        if (val !== null || personal || !household) after[k] = val;
      }
      const members = rows.map((r, i) => ({
        id: r.id, i, name: textOrNull(v[`r${i}.name`]), relation: textOrNull(v[`r${i}.relation`]),
        phone: textOrNull(v[`r${i}.phone`]), vulnerable: v[`r${i}.vulnerable`] === "on",
      }));
      if (!saved) {
        const errors = {};
        members.forEach((m) => { if (!m.name && (m.relation || m.phone)) errors[`r${m.i}.name`] = "必填"; });
        if (Object.keys(errors).length) throw invalid(errors);
        const body = { code: textOrNull(v.code), unit_code: site.unit_code, site_id: site.id, ...after };
        if (after.size === null) delete body.size;
        body.residents = members.filter((m) => m.name).map(({ name, relation, phone, vulnerable }) => ({ name, relation, phone, vulnerable }));
        saved = await api("/api/households", { method: "POST", json: body });
        return saved;
      }
      const diff = changed(before, after);
      if (Object.keys(diff).length) {
        saved = await api(`/api/households/${saved.id}`, { method: "PATCH", json: diff });
        Object.assign(before, after); // a later error in the members: a retry sends only what is left
      }
      for (const m of members) {
        const r = rows[m.i];
        const next = { relation: m.relation, vulnerable: m.vulnerable };
        if (m.name !== null || personal) next.name = m.name;
        if (m.phone !== null || personal || !r.id) next.phone = m.phone;
        try {
          if (!r.id) {
            if (!m.name) continue;
            const made = await api(`/api/households/${saved.id}/residents`, { method: "POST", json: next });
            Object.assign(r, made, personal ? {} : { name: m.name, phone: m.phone });
          } else {
            const prev = { relation: r.relation || null, vulnerable: !!r.vulnerable, ...(personal ? { name: r.name, phone: r.phone || null } : {}) };
            const diff2 = changed(prev, next);
            if (Object.keys(diff2).length) Object.assign(r, await api(`/api/households/${saved.id}/residents/${r.id}`, { method: "PATCH", json: diff2 }), next);
          }
        } catch (e) {
          throw invalid(fieldErrors(e, `r${m.i}.`));
        }
      }
      return api(`/api/households/${saved.id}`);
    },
  });
}

// The households card: its table and, for writers, add / edit / leave-the-site.
export async function renderHouseholds(card, ctx, site, shelters) {
  const personal = ctx.can("personal_data");
  const writer = ctx.can("write");
  const list = await api("/api/households", { params: { site_id: site.id, limit: 200 } }).catch(() => ({ items: [], total: 0 }));
  const shelterName = Object.fromEntries(shelters.map((sh) => [sh.id, sh.name]));
  card.innerHTML = `<h3>受威胁户（${num(list.total)} 户，${num(list.items.reduce((a, x) => a + x.size, 0))} 人）
      ${writer ? `<button class="secondary" id="household-add">新增受威胁户</button>` : ""}</h3>
    <table id="households"><tr><th>户编号</th><th>户主</th><th>电话</th><th>人数</th><th>身份证号</th><th>避险点</th>${writer ? "<th></th>" : ""}</tr>
    ${list.items.map((x) => `<tr data-household="${x.id}" data-code="${esc(x.code)}"><td>${esc(x.code)}</td><td>${esc(x.head_name)}</td>
      <td>${esc(x.phone || "")}</td><td>${num(x.size)}</td><td>${esc(x.id_number || "")}</td><td>${esc(shelterName[x.shelter_id] || "—")}</td>
      ${writer ? `<td><button class="secondary edit-household">编辑</button> <button class="secondary leave-household">移出</button></td>` : ""}</tr>`).join("")}</table>
    <p class="muted">${personal ? "" : "个人信息已按角色权限脱敏"}${writer ? "　“移出”只解除与本隐患点的关联，该户仍保留在台账中。" : ""}</p>`;
  if (!writer) return;
  const again = () => renderHouseholds(card, ctx, site, shelters);
  card.querySelector("#household-add").addEventListener("click", async () => {
    if (await editHousehold(site, null, shelters, personal)) { toast("已新增受威胁户"); await again(); }
  });
  card.querySelectorAll("tr[data-household]").forEach((tr) => {
    const x = list.items.find((i) => i.id === Number(tr.dataset.household));
    tr.querySelector(".edit-household").addEventListener("click", async () => {
      if (await editHousehold(site, x, shelters, personal)) { toast("已保存"); await again(); }
    });
    tr.querySelector(".leave-household").addEventListener("click", async () => {
      const done = await formDialog("移出受威胁户", `<p>将户 ${esc(x.code)}（${esc(x.head_name)}）移出本隐患点？该户记录保留在台账中，可再关联到其他隐患点。</p>`, {
        okText: "移出", submit: () => api(`/api/households/${x.id}`, { method: "PATCH", json: { site_id: null } }),
      });
      if (done) { toast("已移出"); await again(); }
    });
  });
}

// --- risk zones -----------------------------------------------------------------------------

async function editZone(site, zone) {
  const [links, inside] = await Promise.all([
    api(`/api/risk-zones/${zone.id}/site-links`),
    api(`/api/risk-zones/${zone.id}/sites`, { params: { limit: 200 } }).catch(() => ({ items: [] })),
  ]);
  const candidates = [...inside.items];
  if (!candidates.some((c) => c.id === site.id)) candidates.unshift(site);
  const fields = `<p class="muted">${esc(zone.code)} ${esc(zone.name)}</p>
    <label>风险等级<select name="grade">${options(Object.fromEntries(Object.entries(GRADE_ZH).map(([k, v]) => [k, `${v}风险`])), zone.grade)}</select></label>
    <div class="row2"><label>户数<input name="households" type="number" min="0" step="1" value="${zone.households}"></label>
    <label>人数<input name="people" type="number" min="0" step="1" value="${zone.people}"></label></div>
    <fieldset data-field="site_ids"><legend>关联隐患点（区内的点按位置自动计入）</legend>
    ${candidates.map((c) => `<label class="inline"><input type="checkbox" name="site_ids" data-multi value="${c.id}"
      ${links.site_ids.includes(c.id) ? "checked" : ""}>${esc(c.code)} ${esc(c.name)}</label>`).join("<br>")}</fieldset>
    <label>备注<textarea name="remarks" rows="2">${esc(zone.remarks || "")}</textarea></label>`;
  const before = { grade: zone.grade, households: zone.households, people: zone.people, remarks: zone.remarks || null };
  return formDialog("编辑风险区", fields, {
    submit: async (v) => {
      const after = { grade: v.grade, households: numOrNull(v.households), people: numOrNull(v.people), remarks: textOrNull(v.remarks) };
      const diff = changed(before, after);
      if (Object.keys(diff).length) {
        await api(`/api/risk-zones/${zone.id}`, { method: "PATCH", json: diff });
        Object.assign(before, after);
      }
      const ids = v.site_ids.map(Number).sort((a, b) => a - b);
      if (JSON.stringify(ids) !== JSON.stringify(links.site_ids)) {
        await api(`/api/risk-zones/${zone.id}/site-links`, { method: "PUT", json: { site_ids: ids } });
      }
      return true;
    },
  });
}

export async function renderZones(card, ctx, site) {
  const zones = await api("/api/risk-zones", { params: { site_id: site.id, limit: 50 } }).catch(() => ({ items: [] }));
  const writer = ctx.can("write");
  card.innerHTML = `<h3>所在风险区</h3><table id="site-zones"><tr><th>编号</th><th>名称</th><th>等级</th><th>户数</th><th>人数</th>${writer ? "<th></th>" : ""}</tr>
    ${zones.items.map((z) => `<tr data-zone="${z.id}" data-grade="${esc(z.grade)}"><td>${esc(z.code)}</td><td>${esc(z.name)}</td>
      <td class="grade-${esc(z.grade)}">${esc(GRADE_ZH[z.grade] || z.grade)}</td><td>${num(z.households)}</td><td>${num(z.people)}</td>
      ${writer ? `<td><button class="secondary edit-zone">编辑</button></td>` : ""}</tr>`).join("")
      || `<tr><td colspan="6">本点不在任何风险区内</td></tr>`}</table>`;
  card.querySelectorAll("tr[data-zone] .edit-zone").forEach((b) => b.addEventListener("click", async () => {
    const zone = zones.items.find((z) => z.id === Number(b.closest("tr").dataset.zone));
    if (await editZone(site, zone)) { toast("已保存"); await renderZones(card, ctx, site); }
  }));
}
