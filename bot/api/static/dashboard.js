// The trading agent's dashboard: a client of /api/v1 like any other (no build step, nothing from the internet).
// The token is asked for once and kept in sessionStorage (this tab only); reads refresh every few seconds and at
// once on a live event; the WebSocket /api/v1/ws?token=... feeds the event list and tells the token's role; an
// admin's page gets pause/resume and close buttons, each action confirmed and sent with a fresh Idempotency-Key.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "agent.token";
const REFRESH_MS = 5000;
const FEED_MAX = 200;
const RETRY_MS = 3000;
const EVENT_TEXT = {  // the data fields worth a line, by event
  OrderFilled: ["side", "symbol", "quantity", "price", "reason"],
  PositionOpened: ["symbol", "quantity", "price", "stop_price", "target_price"],
  PositionClosed: ["symbol", "quantity", "exit_price", "pnl", "reason"],
  ProtectiveExitHit: ["symbol", "kind", "price"],
  RiskStateChanged: ["old", "new", "reason"],
  TradingPaused: ["paused", "by"],
};

const state = {token: null, role: null, ws: null, timer: null, refreshing: false, again: false,
               charts: null, symbol: null};

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function num(x, digits = 2) {
  if (x === null || x === undefined) return "–";
  return Number(x).toLocaleString("en-US", {maximumFractionDigits: digits, minimumFractionDigits: 0});
}

function price(x) {  // a price to the digits that matter at its size
  if (x === null || x === undefined) return "–";
  const a = Math.abs(Number(x));
  return num(x, a >= 1000 ? 2 : a >= 1 ? 4 : 8);
}

function money(x) {
  return x === null || x === undefined ? "–" : Number(x).toLocaleString("en-US", {minimumFractionDigits: 2,
                                                                                   maximumFractionDigits: 2});
}

function when(ms) {
  return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 16) : "–";
}

function uuid4() {  // crypto.randomUUID needs a secure context; getRandomValues does not
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

class Unauthorized extends Error {}

async function call(method, path, {action = false} = {}) {
  const headers = {Authorization: `Bearer ${state.token}`};
  if (action) headers["Idempotency-Key"] = uuid4();
  const answer = await fetch(API + path, {method, headers, cache: "no-store"});
  if (answer.status === 401) throw new Unauthorized("the token is not valid");
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(body.detail || `${answer.status} ${answer.statusText}`);
  return body;
}

function notice(text, isError = false) {
  const line = $("notice");
  line.textContent = text;
  line.className = isError ? "error" : "";
}

// ------------------------------------------------------------------ login

function showLogin(message = "") {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
  live(false);
  setRole(null);
  clearInterval(state.timer);
  $("dashboard").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("token").value = "";
  $("token").focus();
}

async function start(token) {
  state.token = token;
  try {
    await call("GET", "/status");
  } catch (err) {
    showLogin(err instanceof Unauthorized ? "That token is not valid (revoked, or mistyped)." : err.message);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("login").hidden = true;
  $("dashboard").hidden = false;
  setRole(null);
  if (!state.charts) state.charts = makeCharts();
  connect();
  await refresh();
  state.timer = setInterval(refresh, REFRESH_MS);
}

function setRole(role) {
  state.role = role;
  $("role").textContent = role ? `signed in as ${role}` : "";
  $("admin-actions").hidden = role !== "admin";
  document.body.classList.toggle("admin", role === "admin");
}

// ------------------------------------------------------------------ reads

async function refresh() {
  if (!state.token) return;
  if (state.refreshing) { state.again = true; return; }
  state.refreshing = true;
  try {
    const [status, positions, orders, trades, risk, equity] = await Promise.all([
      call("GET", "/status"), call("GET", "/positions"), call("GET", "/orders"), call("GET", "/trades?limit=20"),
      call("GET", "/risk"), call("GET", "/series/equity")]);
    showStatus(status);
    showPositions(positions.positions);
    showOrders(orders);
    showTrades(trades.items);
    showRisk(status, risk.limits);
    showEquity(equity);
    if (state.symbol) showPrice(await call("GET", `/series/price/${encodeURIComponent(state.symbol)}`));
  } catch (err) {
    if (err instanceof Unauthorized) { showLogin("The token is no longer valid."); return; }
    notice(`Could not refresh: ${err.message}`, true);
  } finally {
    state.refreshing = false;
    if (state.again) { state.again = false; setTimeout(refresh, 0); }
  }
}

function showStatus(s) {
  $("mode").textContent = s.mode;
  $("state").textContent = s.paused ? `${s.risk_state} · paused` : s.risk_state;
  $("state").className = `badge ${s.paused || s.risk_state !== "ACTIVE" ? "warn" : "ok"}`;
  $("equity").textContent = `equity ${money(s.equity)} · cash ${money(s.cash)}`;
  const select = $("symbol");
  const symbols = s.symbols.map((x) => x.symbol);
  if (select.options.length !== symbols.length) {
    select.replaceChildren(...symbols.map((x) => el("option", x)));
    state.symbol = state.symbol && symbols.includes(state.symbol) ? state.symbol : symbols[0] || null;
    if (state.symbol) select.value = state.symbol;
  }
}

function fill(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
  if (!rows.length) {
    const row = el("tr", null, "empty");
    const cell = el("td", "none");
    cell.colSpan = table.tHead ? table.tHead.rows[0].cells.length : 2;
    row.append(cell);
    body.append(row);
  }
}

function row(cells, attrs = {}) {
  const tr = el("tr");
  for (const [k, v] of Object.entries(attrs)) tr.dataset[k] = v;
  for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
  return tr;
}

function showPositions(positions) {
  fill($("positions"), positions.map((p) => {
    const action = el("td");
    if (state.role === "admin") {
      const button = el("button", "Close", "close");
      button.type = "button";
      button.addEventListener("click", () => act(`/close/${encodeURIComponent(p.symbol)}`,
        `Close the ${p.symbol} position (${num(p.quantity, 8)}) at the next candle's open?`));
      action.append(button);
    }
    const pnl = el("td", money(p.unrealized_pnl), p.unrealized_pnl < 0 ? "neg" : "pos");
    return row([p.symbol, num(p.quantity, 8), price(p.avg_price), price(p.mark_price), pnl,
                price(p.stop_price), price(p.target_price), action], {symbol: p.symbol});
  }));
}

function showOrders(orders) {
  const pending = orders.pending.map((o) => row([o.order_id, o.symbol, `pending (${o.reason})`, o.side,
    o.quantity !== null ? num(o.quantity, 8) : `${money(o.notional)} quote`]));
  const protective = orders.protective.map((o) => row([o.order_id, o.symbol, o.kind, price(o.level),
    num(o.quantity, 8)]));
  fill($("orders"), [...pending, ...protective]);
}

function showTrades(trades) {
  fill($("trades"), trades.map((t) => row([t.symbol, when(t.exit_time), price(t.entry_price),
    price(t.exit_price), el("td", `${money(t.pnl)} (${num(t.pnl_pct * 100)} %)`, t.pnl < 0 ? "neg" : "pos"),
    t.exit_reason])));
}

function showRisk(status, limits) {
  $("risk-state").textContent = `${status.risk_state}${status.paused ? " (paused)" : ""}` +
    (status.risk_reason ? `: ${status.risk_reason}` : "");
  fill($("risk"), Object.entries(limits).map(([k, v]) => row([k, num(v, 6)])));
}

// ------------------------------------------------------------------ charts

function makeCharts() {
  const lib = window.LightweightCharts;
  const options = {autoSize: true, layout: {background: {color: "#ffffff"}, textColor: "#333"},
                   timeScale: {timeVisible: true, secondsVisible: false}, rightPriceScale: {borderVisible: false}};
  const equityChart = lib.createChart($("equity-chart"), options);
  const priceChart = lib.createChart($("price-chart"), options);
  return {
    equity: equityChart.addAreaSeries({lineColor: "#2962ff", topColor: "rgba(41,98,255,0.3)",
                                       bottomColor: "rgba(41,98,255,0.02)", lineWidth: 2}),
    price: priceChart.addLineSeries({color: "#444", lineWidth: 1}),
    equityChart, priceChart, fitted: new Set(),
  };
}

function series(ts, values) {  // seconds, strictly increasing (the library's rule): the last value of each second
  const points = [];
  for (let i = 0; i < ts.length; i++) {
    const time = Math.floor(ts[i] / 1000);
    if (points.length && points[points.length - 1].time >= time) points[points.length - 1].value = values[i];
    else points.push({time, value: values[i]});
  }
  return points;
}

function fitOnce(name, chart, points) {  // the whole series in view the first time; the user's zoom after that
  if (points.length > 1 && !state.charts.fitted.has(name)) {
    state.charts.fitted.add(name);
    chart.timeScale().fitContent();
  }
}

function showEquity(data) {
  const points = series(data.ts, data.equity);
  state.charts.equity.setData(points);
  fitOnce("equity", state.charts.equityChart, points);
}

function showPrice(data) {
  const points = series(data.ts, data.close);
  state.charts.price.setData(points);
  fitOnce(`price:${data.symbol}`, state.charts.priceChart, points);
  if (!points.length) { state.charts.price.setMarkers([]); return; }
  const first = points[0].time;
  const markers = [];
  for (const t of data.trades) {
    const entry = Math.floor(t.entry_time / 1000);
    const exit = Math.floor(t.exit_time / 1000);
    if (entry >= first) markers.push({time: entry, position: "belowBar", color: "#26a69a", shape: "arrowUp",
                                      text: "buy"});
    markers.push({time: exit, position: "aboveBar", color: t.pnl < 0 ? "#ef5350" : "#2962ff", shape: "arrowDown",
                  text: `sell ${money(t.pnl)}`});
  }
  if (data.open_entry && Math.floor(data.open_entry.ts / 1000) >= first) {
    markers.push({time: Math.floor(data.open_entry.ts / 1000), position: "belowBar", color: "#26a69a",
                  shape: "arrowUp", text: `open @ ${price(data.open_entry.price)}`});
  }
  markers.sort((a, b) => a.time - b.time);
  state.charts.price.setMarkers(markers);
}

// ------------------------------------------------------------------ actions

async function act(path, question) {
  if (!window.confirm(question)) return;
  try {
    const answer = await call("POST", path, {action: true});
    const orders = answer.orders ? answer.orders.map((o) => `${o.side} ${o.symbol} (${o.order_id})`).join(", ") : "";
    notice(orders ? `Sent: ${orders}; it fills at the next candle's open.`
                  : `Done: ${answer.paused ? "paused" : "trading"}${answer.changed ? "" : " (no change)"}.`);
  } catch (err) {
    if (err instanceof Unauthorized) { showLogin("The token is no longer valid."); return; }
    notice(`Refused: ${err.message}`, true);
  }
  refresh();
}

// ------------------------------------------------------------------ live events

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${API}/ws?token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  ws.addEventListener("message", (message) => {
    let m;
    try { m = JSON.parse(message.data); } catch { return; }
    if (m.type === "ready") {
      setRole(m.role);
      live(true);
      refresh();
    } else if (m.type === "ping") {
      ws.send(JSON.stringify({type: "pong"}));
    } else if (m.type === "event") {
      feed(m);
      refresh();
    }
  });
  ws.addEventListener("close", () => {
    if (state.ws !== ws) return;
    live(false);
    state.ws = null;
    if (state.token) setTimeout(() => { if (state.token && !state.ws) connect(); }, RETRY_MS);
  });
}

function live(on) {
  $("live").textContent = on ? "live" : "offline";
  $("live").className = `badge ${on ? "ok" : "off"}`;
}

function feed(m) {
  const d = m.data || {};
  const fields = EVENT_TEXT[m.event] || Object.keys(d).filter((k) => k !== "ts").slice(0, 5);
  const text = fields.filter((k) => d[k] !== undefined && d[k] !== null).map((k) => `${k} ${d[k]}`).join(" · ");
  const item = el("li", null, `event ${m.kind}`);
  item.dataset.event = m.event;
  if (d.order_id) item.dataset.orderId = d.order_id;
  item.append(el("time", when(d.ts || Date.now())), el("strong", m.event), el("span", text));
  const list = $("feed");
  list.prepend(item);
  while (list.children.length > FEED_MAX) list.lastChild.remove();
}

// ------------------------------------------------------------------ wiring

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token").value.trim();
    if (token) start(token);
  });
  $("logout").addEventListener("click", () => showLogin());
  $("pause").addEventListener("click", () => act("/pause", "Pause new automatic entries? Exits and stops go on."));
  $("resume").addEventListener("click", () => act("/resume", "Resume trading?"));
  $("symbol").addEventListener("change", (e) => { state.symbol = e.target.value; refresh(); });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) start(saved); else showLogin();
});
