// hyperhive: the hive page. Every action is a POST to the JSON API (with the CSRF
// header); what it changes comes back through the live stream like any other event.
'use strict';

(() => {
  const hh = window.hyperhive;
  const api = hh.base;
  const DESTRUCTIVE = new Set(['stop', 'restart', 'rebuild', 'destroy', 'purge']);
  const CONFIRM = {
    stop: (a) => `Stop ${a}? Its running turn ends.`,
    restart: (a) => `Restart ${a}? Its running turn ends.`,
    rebuild: (a) => `Rebuild ${a} from its applied config and restart it?`,
    destroy: (a) => `Destroy ${a}? Its state and Claude credentials are kept (purge removes them).`,
    purge: (a) => `Purge ${a}? Its state dir and Claude credentials are deleted for good.`,
  };

  // ------------------------------------------------------------------ agent actions

  document.addEventListener('click', async (e) => {
    const btn = e.target.closest('button[data-action]');
    if (!btn || btn.closest('form')) return;
    const action = btn.getAttribute('data-action');
    const name = btn.getAttribute('data-agent');
    if (DESTRUCTIVE.has(action) && !window.confirm(CONFIRM[action](name))) return;
    btn.disabled = true;
    try {
      const path = `${api}/agents/${encodeURIComponent(name)}/${encodeURIComponent(action)}`;
      await hh.post(path, {});
      hh.toast(`${action} ${name}: done`);
    } catch (err) {
      hh.toast(`${action} ${name}: ${err.message}`, true);
    } finally {
      btn.disabled = false;
    }
  });

  // ------------------------------------------------------------------ logs and diffs, on opening

  document.addEventListener(
    'toggle',
    async (e) => {
      const det = e.target;
      if (!(det instanceof HTMLDetailsElement) || !det.open) return;
      const pre = det.querySelector('pre[data-client]');
      if (!pre) return;
      try {
        if (det.hasAttribute('data-logs')) {
          const name = det.getAttribute('data-logs');
          const r = await hh.getJSON(`${api}/agents/${encodeURIComponent(name)}/logs?lines=200`);
          pre.textContent = r.result.lines.join('\n') || '(no log lines)';
          pre.scrollTop = pre.scrollHeight;
        } else if (det.hasAttribute('data-diff')) {
          const id = det.getAttribute('data-diff');
          const r = await hh.getJSON(`${api}/approvals/${encodeURIComponent(id)}/diff`);
          pre.textContent = r.result.diff || '(no change)';
        }
      } catch (err) {
        pre.textContent = `could not load: ${err.message}`;
      }
    },
    true,
  );

  // ------------------------------------------------------------------ forms

  document.addEventListener('submit', async (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.classList.contains('logout')) return; // a plain form post
    e.preventDefault();
    const button = e.submitter || form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      if (form.classList.contains('answer')) await answer(form);
      else if (form.classList.contains('decide')) await decide(form, e.submitter);
      else if (form.id === 'spawn-form') await spawn(form);
      else if (form.id === 'compose') await compose(form);
      else if (form.id === 'feed-filter') refilter();
    } catch (err) {
      hh.toast(err.message, true);
    } finally {
      if (button) button.disabled = false;
    }
  });

  async function answer(form) {
    const id = form.getAttribute('data-question');
    const options = Array.from(form.querySelectorAll('input[name=option]:checked')).map((i) => i.value);
    const text = form.querySelector('textarea[name=text]').value;
    await hh.post(`${api}/questions/${encodeURIComponent(id)}/answer`, { options, text });
    hh.toast('answered');
  }

  document.addEventListener('click', async (e) => {
    const btn = e.target.closest('button.cancel-question');
    if (!btn) return;
    const id = btn.getAttribute('data-question');
    if (!window.confirm('Withdraw this question? The agent is told it was cancelled.')) return;
    try {
      await hh.post(`${api}/questions/${encodeURIComponent(id)}/cancel`, {});
      hh.toast('question cancelled');
    } catch (err) {
      hh.toast(err.message, true);
    }
  });

  async function decide(form, submitter) {
    const id = form.getAttribute('data-approval');
    const decision = submitter && submitter.value === 'deny' ? 'deny' : 'approve';
    const note = form.querySelector('input[name=note]').value;
    await hh.post(`${api}/approvals/${encodeURIComponent(id)}/${decision}`, { note });
    hh.toast(`${decision === 'approve' ? 'approved' : 'denied'}`);
  }

  async function spawn(form) {
    const name = form.querySelector('input[name=name]').value.trim();
    const model = form.querySelector('input[name=model]').value.trim();
    await hh.post(`${api}/agents`, { name, model });
    form.reset();
    hh.toast(`spawned ${name}`);
  }

  async function compose(form) {
    const box = form.querySelector('textarea[name=text]');
    const r = await hh.post(`${api}/compose`, { text: box.value });
    box.value = '';
    hh.toast(`sent to ${r.to}`);
  }

  document.addEventListener('keydown', (e) => {
    const box = e.target;
    if (box instanceof HTMLTextAreaElement && box.closest('#compose') && e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      box.form.requestSubmit();
    }
  });

  // ------------------------------------------------------------------ the event feed

  const feed = document.getElementById('feed');
  const filterForm = document.getElementById('feed-filter');
  let filter = { agent: '', kind: '' };

  function globToRegExp(glob) {
    const body = glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    return new RegExp(`^${body}$`);
  }

  function matches(li) {
    if (filter.agent && li.getAttribute('data-agent') !== filter.agent) return false;
    if (filter.kind && !globToRegExp(filter.kind).test(li.getAttribute('data-kind') || '')) return false;
    return true;
  }

  function feedQuery(before) {
    const q = new URLSearchParams();
    if (filter.agent) q.set('agent', filter.agent);
    if (filter.kind) q.set('kind', filter.kind);
    if (before) q.set('before', String(before));
    return `/ui/h/${encodeURIComponent(hh.hive)}/feed?${q}`;
  }

  let refilterTimer = null;
  function refilter() {
    clearTimeout(refilterTimer);
    refilterTimer = setTimeout(async () => {
      filter = {
        agent: filterForm.querySelector('input[name=agent]').value.trim(),
        kind: filterForm.querySelector('input[name=kind]').value.trim(),
      };
      try {
        const page = await hh.getJSON(feedQuery(hh.lastSeq + 1));
        const t = document.createElement('template');
        t.innerHTML = page.html;
        feed.replaceChildren(...Array.from(t.content.children));
      } catch (err) {
        hh.toast(`filter: ${err.message}`, true);
        for (const li of feed.children) li.hidden = !matches(li);
      }
    }, 250);
  }
  if (filterForm) filterForm.addEventListener('input', refilter);

  document.getElementById('feed-older')?.addEventListener('click', async () => {
    const last = feed.lastElementChild;
    const before = last ? Number(last.getAttribute('data-seq')) : hh.lastSeq + 1;
    try {
      const page = await hh.getJSON(feedQuery(before));
      const t = document.createElement('template');
      t.innerHTML = page.html;
      feed.append(...Array.from(t.content.children));
      if (!page.count) hh.toast('no older events');
    } catch (err) {
      hh.toast(err.message, true);
    }
  });

  // ------------------------------------------------------------------ notifications

  const MUTE_KEY = 'hyperhive.notifications.muted';
  const enableBtn = document.getElementById('notify-enable');
  const muteBtn = document.getElementById('notify-mute');
  const notified = []; // what was shown (tests read it)
  hh.notified = notified;

  const muted = () => localStorage.getItem(MUTE_KEY) === '1';

  function showControls() {
    const supported = 'Notification' in window;
    const perm = supported ? Notification.permission : 'unsupported';
    enableBtn.hidden = perm === 'granted';
    enableBtn.disabled = perm === 'denied' || perm === 'unsupported';
    if (perm === 'denied') enableBtn.textContent = 'notifications blocked';
    muteBtn.hidden = perm !== 'granted';
    muteBtn.textContent = muted() ? 'unmute' : 'mute';
    muteBtn.setAttribute('aria-pressed', muted() ? 'true' : 'false');
  }

  enableBtn?.addEventListener('click', async () => {
    if (!('Notification' in window)) return;
    await Notification.requestPermission();
    showControls();
  });
  muteBtn?.addEventListener('click', () => {
    localStorage.setItem(MUTE_KEY, muted() ? '0' : '1');
    showControls();
  });

  function notify(n) {
    if (!('Notification' in window) || Notification.permission !== 'granted' || muted()) return;
    const shown = new Notification(n.title, { body: n.body, tag: `${n.kind}-${n.tag}` });
    notified.push({ kind: n.kind, title: n.title, body: n.body });
    shown.onclick = () => {
      window.focus();
      shown.close();
    };
  }

  hh.hooks.push({
    update(u) {
      if (u.notify && u.seq > hh.pageSeq) notify(u.notify); // never what the page loaded with
    },
    added(node, parent) {
      if (parent === feed && node.tagName === 'LI') node.hidden = !matches(node);
    },
  });

  if (enableBtn) showControls();
})();
