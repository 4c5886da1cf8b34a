// The shell: login, navigation (hash routes), the caller's role and unit from /api/auth/me.
import { api, login, logout, token } from "./api.js";
import { ROLE_ZH, esc, errorText } from "./util.js";

// Pages are loaded on first use. An entry with `perm` is shown only to roles holding that permission;
// an entry marked `later` is a place kept for a page not built yet (a note instead of a module).
const NAV = [
  { path: "map", label: "一张图", module: "./map.js" },
  { path: "dashboard", label: "综合看板", module: "./dashboard.js" },
  { path: "sites", label: "隐患点", module: "./sites.js" },
  { path: "alerts", label: "预警处置", module: "./alerts.js" },
  { path: "products", label: "区域预警", module: "./products.js" },
  { path: "import", label: "数据导入", module: "./importer.js", perm: "write" },
  { path: "dissemination", label: "预警发布", module: "./dissemination.js", perm: "read" },
  { path: "fieldwork", label: "巡查排查", module: "./fieldwork.js", perm: "read" },
  { path: "phone", label: "监测员", module: "./phone.js" },
];
const HIDDEN_ROUTES = { site: "./site.js" };

const state = { me: null };
export const ctx = {
  get me() { return state.me; },
  can(perm) { return !!state.me && state.me.permissions.includes(perm); },
};

function show(id) {
  document.getElementById("login").classList.toggle("hidden", id !== "login");
  document.getElementById("shell").classList.toggle("hidden", id !== "shell");
}

function renderNav(active) {
  const nav = document.getElementById("nav");
  nav.innerHTML = NAV.filter((n) => !n.perm || ctx.can(n.perm))
    .map((n) => `<a href="#/${n.path}" data-nav="${n.path}" class="${n.path === active ? "active" : ""}${n.later ? " todo" : ""}">${esc(n.label)}</a>`)
    .join("");
}

let current = null;
let generation = 0;
async function route() {
  if (!state.me) return;
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, ...rest] = hash.split("/");
  const defaultPath = state.me.role === "monitor" ? "phone" : "map";
  if (!path) {
    location.replace(`#/${defaultPath}`); // the hashchange renders it (once)
    return;
  }
  const name = path;
  const entry = NAV.find((n) => n.path === name);
  const module = entry ? entry.module : HIDDEN_ROUTES[name];
  renderNav(entry ? name : name === "site" ? "sites" : "");
  if (entry && entry.perm && !ctx.can(entry.perm)) {
    location.hash = `#/${defaultPath}`;
    return;
  }
  // Each render gets its own element: a render overtaken by a newer one writes into a detached node.
  const mine = ++generation;
  const view = document.createElement("div");
  view.className = "view";
  document.getElementById("view").replaceChildren(view);
  if (current && current.destroy) current.destroy();
  current = null;
  if (entry && entry.later) {
    view.innerHTML = `<div class="page"><h2>${esc(entry.label)}</h2><div class="card">${esc(entry.later)}</div></div>`;
    return;
  }
  if (!module) {
    location.hash = `#/${defaultPath}`;
    return;
  }
  try {
    const page = await import(module);
    const handle = (await page.render(view, ctx, rest)) || null;
    if (mine !== generation) {
      if (handle && handle.destroy) handle.destroy();
    } else current = handle;
  } catch (e) {
    view.innerHTML = `<div class="page"><div class="card error">页面加载失败：${esc(errorText(e))}</div></div>`;
  }
}

async function start() {
  if (!token()) {
    show("login");
    return;
  }
  try {
    state.me = await api("/api/auth/me");
  } catch {
    show("login");
    return;
  }
  const who = (name) => `${state.me.display_name || state.me.username}（${ROLE_ZH[state.me.role] || state.me.role}，${name}）`;
  document.getElementById("who").textContent = who(state.me.unit_code);
  api(`/api/units/${state.me.unit_code}`).then((u) => { document.getElementById("who").textContent = who(u.name); }).catch(() => null);
  show("shell");
  await route();
}

document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("login-error");
  err.textContent = "";
  try {
    await login(document.getElementById("login-username").value, document.getElementById("login-password").value);
    await start();
  } catch (e) {
    err.textContent = e.status === 401 ? "用户名或密码错误" : errorText(e);
  }
});
document.getElementById("logout").addEventListener("click", async () => {
  await logout().catch(() => null);
  state.me = null;
  location.hash = "";
  show("login");
});
window.addEventListener("geowarn:logged-out", () => { state.me = null; show("login"); });
window.addEventListener("hashchange", route);
start();
