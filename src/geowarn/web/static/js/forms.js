// Edit forms in a modal dialog that stays open on an error: the API's problem (RFC 9457) is shown in
// Chinese next to the field it concerns (validation `errors[].loc`, or a `detail_zh` naming the field),
// anything else above the buttons.
import { esc, h } from "./util.js";

// pydantic v2 error types → Chinese; `n` is the bound quoted in the English message.
const ERROR_ZH = {
  missing: () => "必填",
  greater_than_equal: (n) => `不能小于 ${n}`,
  greater_than: (n) => `须大于 ${n}`,
  less_than_equal: (n) => `不能大于 ${n}`,
  less_than: (n) => `须小于 ${n}`,
  string_too_short: (n) => (Number(n) <= 1 ? "不能为空" : `至少 ${n} 个字符`),
  string_too_long: (n) => `最多 ${n} 个字符`,
  too_long: (n) => `最多 ${n} 项`,
  string_pattern_mismatch: () => "格式不正确（只能用字母、数字、-、_、.）",
  int_parsing: () => "须为整数",
  int_type: () => "须为整数",
  int_from_float: () => "须为整数",
  float_parsing: () => "须为数字",
  float_type: () => "须为数字",
  decimal_parsing: () => "须为数字",
  decimal_max_places: (n) => `最多 ${n} 位小数`,
  enum: () => "取值无效",
  literal_error: () => "取值无效",
  extra_forbidden: () => "不允许的字段",
  dict_type: () => "格式不正确",
  bool_parsing: () => "须为是或否",
};

function bound(msg) {
  const m = /(-?\d+(?:\.\d+)?)/.exec(msg || "");
  return m ? m[1] : "";
}

// { field: message } from an ApiError; `_form` holds what names no field. `prefix` is put before
// each field name (e.g. "r2." for the third resident's row).
export function fieldErrors(e, prefix = "") {
  const out = {};
  const add = (field, msg) => {
    const key = field ? prefix + field : "_form";
    out[key] = out[key] ? `${out[key]}；${msg}` : msg;
  };
  const body = e && e.body;
  if (body && Array.isArray(body.errors) && body.errors.length) {
    for (const err of body.errors) {
      const loc = (err.loc || []).filter((p) => p !== "body");
      const zh = (ERROR_ZH[err.type] || (() => "输入无效"))(bound(err.msg));
      add(loc.join("."), zh);
    }
    return out;
  }
  const text = (body && (body.detail_zh || body.detail)) || (e && e.message) || String(e);
  const named = /^([a-z_]+)(?:：|:| 不能为空)/.exec(text);
  if (named) add(named[1], text.replace(/^[a-z_]+(?:[：:]\s*| (?=不能为空))/, ""));
  else if (/编号“.*”已存在/.test(text)) add("code", text);
  else add("", text);
  return out;
}

// Show errors in a form: each next to its field (`[name=field]` or `[data-field=field]`), the rest on top.
export function showErrors(form, errors) {
  form.querySelectorAll(".field-error").forEach((el) => el.remove());
  form.querySelectorAll(".invalid").forEach((el) => el.classList.remove("invalid"));
  for (const [field, msg] of Object.entries(errors)) {
    const input = field === "_form" ? null
      : form.querySelector(`[name="${CSS.escape(field)}"], [data-field="${CSS.escape(field)}"]`);
    const note = h(`<div class="field-error error" role="alert" data-for="${esc(field)}">${esc(msg)}</div>`);
    if (input) {
      input.classList.add("invalid");
      // Inside the field's own label (or table cell, fieldset), so a grid row keeps its columns.
      const label = input.closest("label:not(.inline)");
      if (label) label.appendChild(note);
      else if (input.matches("fieldset, td")) input.appendChild(note);
      else (input.closest("td, fieldset") || input.parentElement).appendChild(note);
    } else {
      const top = form.querySelector(".form-errors");
      note.dataset.for = field === "_form" ? "" : field;
      if (field !== "_form") note.textContent = `${field}：${msg}`;
      top.appendChild(note);
    }
  }
  const first = form.querySelector(".invalid, .field-error");
  if (first) first.scrollIntoView({ block: "nearest" });
}

// A modal form: `submit(values, form)` saves; an error it throws is shown in the form, which stays
// open. Resolves with what `submit` returned, or null when cancelled. `onOpen(form)` wires extras.
export function formDialog(title, fieldsHtml, { okText = "保存", submit, onOpen, wide = false } = {}) {
  return new Promise((resolve) => {
    const d = h(`<div class="dialog"><div class="${wide ? "wide" : ""}"><h3>${esc(title)}</h3>
      <form novalidate><div class="form-body">${fieldsHtml}</div><div class="form-errors"></div>
      <div class="toolbar"><button type="submit" class="ok">${esc(okText)}</button>
      <button type="button" class="secondary cancel">取消</button></div></form></div></div>`);
    document.body.appendChild(d);
    const form = d.querySelector("form");
    const ok = form.querySelector("button.ok");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      ok.disabled = true;
      try {
        const result = await submit(formValues(form), form);
        d.remove();
        resolve(result === undefined ? true : result);
      } catch (e) {
        showErrors(form, e && e.fieldErrors ? e.fieldErrors : fieldErrors(e));
      } finally {
        ok.disabled = false;
      }
    });
    d.querySelector(".cancel").addEventListener("click", () => { d.remove(); resolve(null); });
    if (onOpen) onOpen(form);
    const first = form.querySelector("input:not([type=hidden]),textarea,select");
    if (first) first.focus();
  });
}

// The form's values: one string per name, a list for checkbox groups (`data-multi`).
export function formValues(form) {
  const data = new FormData(form);
  const out = {};
  for (const key of new Set(data.keys())) {
    const multi = form.querySelector(`[name="${CSS.escape(key)}"][data-multi]`);
    out[key] = multi ? data.getAll(key) : data.get(key);
  }
  form.querySelectorAll("input[type=checkbox][data-multi]").forEach((c) => { if (!(c.name in out)) out[c.name] = []; });
  return out;
}

// An error carrying its own field map (thrown by a submit that checks values before calling the API).
export function invalid(fields) {
  const e = new Error(Object.values(fields).join("；"));
  e.fieldErrors = fields;
  return e;
}

// The fields of `next` that differ from `prev` (numbers compared as numbers, "" as null).
export function changed(prev, next) {
  const out = {};
  for (const [k, v] of Object.entries(next)) {
    const a = prev[k] ?? null, b = v ?? null;
    if (Array.isArray(b) ? JSON.stringify(a) !== JSON.stringify(b) : String(a ?? "") !== String(b ?? "")) out[k] = v;
  }
  return out;
}

// "" → null; a numeric text → a number (left as text when not a number, so the API says why).
export function numOrNull(v) {
  if (v === undefined || v === null || String(v).trim() === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : String(v);
}

export function textOrNull(v) {
  return v === undefined || v === null || String(v).trim() === "" ? null : String(v).trim();
}
