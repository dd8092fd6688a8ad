// hyperhive: the live part of every page. Server-sent events bring, for each event of
// the hive, the page fragments it changed (rendered and escaped by the server); they
// are morphed into the page in place, so focus, typed text, picked options, open
// <details> and the scroll position stay as the operator left them.
'use strict';

(() => {
  const meta = (name) => {
    const el = document.querySelector(`meta[name="${name}"]`);
    return el ? el.getAttribute('content') : null;
  };
  const hive = meta('hive');
  const page = meta('page');
  const agent = meta('agent');
  const csrf = meta('csrf-token') || '';
  const pageSeq = Number(meta('seq') || 0);

  const state = {
    hive,
    page,
    agent,
    pageSeq,
    lastSeq: pageSeq,
    applied: [], // [seq, epoch ms with fractions] of the last updates (benchmarks read it)
    connected: false,
    hooks: [],
  };
  window.hyperhive = state;

  // ------------------------------------------------------------------ morphing

  const CONTROLS = new Set(['INPUT', 'TEXTAREA', 'SELECT', 'OPTION']);
  const KEEP = new Set(['open']); // the operator's, not the server's

  const keyOf = (n) => (n.nodeType === 1 ? n.id || n.getAttribute('data-key') || null : null);

  function syncAttributes(from, to) {
    for (const { name } of Array.from(from.attributes)) {
      if (!KEEP.has(name) && !to.hasAttribute(name)) from.removeAttribute(name);
    }
    for (const { name, value } of Array.from(to.attributes)) {
      if (!KEEP.has(name) && from.getAttribute(name) !== value) from.setAttribute(name, value);
    }
  }

  function morph(from, to) {
    if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName) {
      from.replaceWith(to);
      return;
    }
    if (from.nodeType !== 1) {
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return;
    }
    if (CONTROLS.has(from.nodeName)) return; // what the operator typed or picked stays
    syncAttributes(from, to);
    if (from.hasAttribute('data-client')) return; // filled by this page (logs, a diff)
    morphChildren(from, to);
  }

  function morphChildren(from, to) {
    const olds = Array.from(from.childNodes);
    const byKey = new Map();
    for (const n of olds) {
      const k = keyOf(n);
      if (k) byKey.set(k, n);
    }
    const used = new Set();
    const result = [];
    let scan = 0;
    for (const fresh of Array.from(to.childNodes)) {
      const k = keyOf(fresh);
      let match = null;
      if (k) {
        const old = byKey.get(k);
        if (old && !used.has(old) && old.nodeName === fresh.nodeName) match = old;
      } else {
        while (scan < olds.length) {
          const old = olds[scan++];
          if (!used.has(old) && !keyOf(old) && old.nodeName === fresh.nodeName) {
            match = old;
            break;
          }
        }
      }
      if (match) {
        used.add(match);
        morph(match, fresh);
        result.push(match);
      } else {
        result.push(fresh);
      }
    }
    let ref = from.firstChild;
    for (const n of result) {
      if (n === ref) {
        ref = ref.nextSibling;
        continue;
      }
      from.insertBefore(n, ref);
    }
    for (const n of olds) if (!used.has(n) && n.parentNode === from) n.remove();
  }

  function fromHTML(html) {
    const t = document.createElement('template');
    t.innerHTML = html.trim(); // server-rendered, escaped; CSP forbids inline script anyway
    return t.content.firstElementChild;
  }

  const FEED_MAX = 500; // rows of the event feed
  const TERMINAL_MAX = 2000; // lines of an agent's terminal (a long session, a flood)
  const MESSAGES_MAX = 200; // messages of an inbox panel

  function atBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  }

  function apply(op) {
    const [kind, target, html] = op;
    const el = document.getElementById(target);
    if (kind === 'remove') {
      if (el) el.remove();
      return;
    }
    if (!el) return;
    const node = fromHTML(html);
    if (!node) return;
    if (kind === 'morph') {
      morph(el, node);
      return;
    }
    const existing = node.id ? document.getElementById(node.id) : null;
    if (existing) {
      morph(existing, node);
      return;
    }
    if (kind === 'append') {
      const stick = el.classList.contains('terminal') && atBottom(el);
      el.append(node);
      if (stick) el.scrollTop = el.scrollHeight;
    } else {
      el.prepend(node);
    }
    if (el.id === 'feed') {
      while (el.children.length > FEED_MAX) el.lastElementChild.remove();
    } else if (el.classList.contains('terminal')) {
      while (el.children.length > TERMINAL_MAX) el.firstElementChild.remove();
    } else if (el.classList.contains('messages')) {
      while (el.children.length > MESSAGES_MAX) el.lastElementChild.remove();
    }
    for (const hook of state.hooks) hook.added && hook.added(node, el);
  }

  // ------------------------------------------------------------------ clocks

  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-since]')) {
      const since = Date.parse(el.getAttribute('data-since'));
      if (!Number.isNaN(since)) {
        const text = `thinking · ${ago(now - since)}`;
        if (el.textContent !== text) el.textContent = text;
      }
    }
    for (const el of document.querySelectorAll('[data-expires]')) {
      const left = Date.parse(el.getAttribute('data-expires')) - now;
      const text = Number.isNaN(left) ? '' : left <= 0 ? 'expiring…' : `expires in ${ago(left)}`;
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle('soon', left < 60000);
    }
  }
  setInterval(tick, 1000);

  // ------------------------------------------------------------------ talking to the server

  function toLogin() {
    location.href = '/login?next=' + encodeURIComponent(location.pathname);
  }

  async function post(url, body) {
    const r = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body || {}),
    });
    if (r.status === 401) toLogin();
    let data;
    try {
      data = await r.json();
    } catch (_) {
      data = { ok: false, error: `HTTP ${r.status}` };
    }
    if (!r.ok || !data.ok) throw new Error(data.error || `HTTP ${r.status}`);
    return data.result;
  }

  async function getJSON(url) {
    const r = await fetch(url, { credentials: 'same-origin' });
    if (r.status === 401) toLogin();
    const data = await r.json();
    if (!r.ok || data.ok === false) throw new Error(data.error || `HTTP ${r.status}`);
    return data;
  }

  let toastTimer = null;
  function toast(text, bad) {
    const el = document.getElementById('toast');
    if (!el) return;
    el.textContent = text;
    el.classList.toggle('bad', !!bad);
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (el.hidden = true), bad ? 8000 : 3000);
  }

  // ------------------------------------------------------------------ the stream

  const base = `/api/h/${encodeURIComponent(hive)}`;
  let source = null;

  function streamBanner(broken) {
    const el = document.getElementById('banner-stream');
    if (el) el.hidden = !broken;
  }

  let held = null; // updates that arrive while a snapshot is on its way
  function onUpdate(e) {
    const u = JSON.parse(e.data);
    if (u.hive !== hive) return;
    if (held) {
      held.push(u); // applied after the snapshot, if newer than it
      return;
    }
    applyUpdate(u);
  }

  function applyUpdate(u) {
    if (u.seq <= state.lastSeq) return; // seen already (a replay after reconnecting)
    for (const op of u.ops) apply(op);
    state.lastSeq = u.seq;
    state.applied.push([u.seq, performance.timeOrigin + performance.now()]);
    if (state.applied.length > 5000) state.applied.splice(0, 1000);
    tick();
    for (const hook of state.hooks) hook.update && hook.update(u);
  }

  function onStatus(data) {
    const s = JSON.parse(data);
    state.connected = s.connected;
    apply(['morph', 'banner-nats', s.html]);
    if (s.hive_html !== undefined) apply(['morph', 'banner-hive', s.hive_html]);
  }

  // One live stream per hive for all of this browser's tabs (a SharedWorker: a browser
  // gives an origin six connections, an EventSource per tab would starve the seventh);
  // a browser without shared workers gets an EventSource of its own.
  let worker = null;
  function connect(since) {
    if (window.SharedWorker) {
      if (!worker) {
        worker = new SharedWorker('/static/stream-worker.js', { name: 'hyperhive-stream' });
        worker.port.onmessage = (m) => {
          const msg = m.data;
          if (msg.type === 'update') onUpdate({ data: msg.data });
          else if (msg.type === 'status') onStatus(msg.data);
          else if (msg.type === 'resync') resync(true);
          else if (msg.type === 'open' || msg.type === 'listening') streamBanner(false);
          else if (msg.type === 'broken') streamBanner(true);
        };
        worker.port.start();
        window.addEventListener('pagehide', () => worker.port.postMessage({ type: 'bye' }));
      }
      worker.port.postMessage({ type: 'listen', hive, since });
      return;
    }
    if (source) source.close();
    source = new EventSource(`${base}/stream?since=${since}`);
    source.addEventListener('update', onUpdate);
    source.addEventListener('status', (e) => onStatus(e.data));
    source.addEventListener('resync', () => {
      source.close();
      resync();
    });
    source.onopen = () => streamBanner(false);
    source.onerror = () => {
      streamBanner(true);
      if (source.readyState === EventSource.CLOSED) setTimeout(resync, 2000);
    };
  }

  // A snapshot of every section, morphed in; `listening`: the stream goes on by itself
  // (the shared worker's), so only the page catches up.
  async function resync(listening) {
    held = held || [];
    try {
      const q = agent ? `?agent=${encodeURIComponent(agent)}` : '';
      const snap = await getJSON(`/ui/h/${encodeURIComponent(hive)}/snapshot${q}`);
      for (const op of snap.ops) apply(op);
      const before = state.lastSeq;
      state.lastSeq = snap.seq;
      const later = held;
      held = null;
      for (const u of later) applyUpdate(u); // what the snapshot did not have yet
      tick();
      for (const hook of state.hooks) hook.resynced && hook.resynced(before, snap.seq);
      if (!listening) connect(snap.seq);
    } catch (err) {
      streamBanner(true);
      setTimeout(() => resync(listening), 3000);
    }
  }

  state.apply = apply;
  state.morph = morph;
  state.post = post;
  state.getJSON = getJSON;
  state.toast = toast;
  state.base = base;
  state.tick = tick;

  document.addEventListener('DOMContentLoaded', () => {
    tick();
    connect(state.lastSeq);
  });
})();
