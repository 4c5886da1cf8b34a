// The scoped API with the session's bearer token (sessionStorage: gone when the tab closes).
const KEY = "geowarn.token";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail_zh || body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export async function login(username, password) {
  const form = new URLSearchParams({ username, password });
  const r = await fetch("/api/auth/token", { method: "POST", body: form });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, body);
  sessionStorage.setItem(KEY, body.access_token);
  return body;
}

export async function logout() {
  try {
    await api("/api/auth/logout", { method: "POST" });
  } finally {
    sessionStorage.removeItem(KEY);
  }
}

export async function api(path, { method = "GET", json, form, params } = {}) {
  let url = path;
  if (params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    const s = q.toString();
    if (s) url += (url.includes("?") ? "&" : "?") + s;
  }
  const headers = {};
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) body = form;
  const r = await fetch(url, { method, headers, body });
  if (r.status === 401) {
    sessionStorage.removeItem(KEY);
    window.dispatchEvent(new Event("geowarn:logged-out"));
  }
  if (r.status === 204) return null;
  const ct = r.headers.get("content-type") || "";
  const data = ct.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// A file from the API (PDF, CSV, XLSX) saved through the browser: the bearer token cannot ride on a plain link.
export async function download(path, filename) {
  const headers = {};
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const r = await fetch(path, { headers });
  if (!r.ok) {
    const ct = r.headers.get("content-type") || "";
    throw new ApiError(r.status, ct.includes("json") ? await r.json() : null);
  }
  const cd = r.headers.get("content-disposition") || "";
  const m = /filename="?([^";]+)"?/.exec(cd);
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename || (m ? m[1] : "download");
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
