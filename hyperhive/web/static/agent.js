// hyperhive: one agent's page. The terminal fills itself from the live stream; the send
// box takes a message for the agent or a /command; the login panel gives the agent
// Claude credentials of its own.
'use strict';

(() => {
  const hh = window.hyperhive;
  const api = hh.base;
  const name = hh.agent;
  const agentApi = `${api}/agents/${encodeURIComponent(name)}`;
  const term = document.getElementById(`term-${name}`);
  const output = document.getElementById('say-output');

  if (term) term.scrollTop = term.scrollHeight;

  function show(text, bad) {
    output.textContent = text;
    output.classList.toggle('bad', !!bad);
    output.hidden = !text;
  }

  // ------------------------------------------------------------------ the send box

  const say = document.getElementById('say');
  say.addEventListener('submit', async (e) => {
    e.preventDefault();
    const box = say.querySelector('textarea[name=text]');
    const text = box.value;
    if (!text.trim()) return;
    try {
      const r = await hh.post(`${agentApi}/say`, { text });
      box.value = '';
      show(r.output || 'done');
      if (r.clear_terminal && term) term.replaceChildren();
    } catch (err) {
      show(err.message, true);
    }
  });
  say.addEventListener('keydown', (e) => {
    if (e.target instanceof HTMLTextAreaElement && e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      say.requestSubmit();
    }
  });

  // the cancel button in the state row
  document.addEventListener('click', async (e) => {
    const btn = e.target.closest('button[data-action="cancel-turn"]');
    if (!btn) return;
    if (!window.confirm(`Cancel ${name}'s running turn?`)) return;
    try {
      await hh.post(`${agentApi}/cancel-turn`, {});
      show('cancelling the turn');
    } catch (err) {
      show(err.message, true);
    }
  });

  // ------------------------------------------------------------------ Claude login

  const loginOut = document.getElementById('login-output');
  function loginSay(text, bad) {
    loginOut.textContent = text;
    loginOut.classList.toggle('bad', !!bad);
    loginOut.hidden = !text;
  }
  // the chip "needs login" in the state row opens the panel
  document.addEventListener('click', (e) => {
    if (e.target.closest('a.chip-login')) document.getElementById('login').open = true;
  });

  document.getElementById('login-key').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = e.target.querySelector('input[name=api_key]');
    try {
      await hh.post(`${agentApi}/login/api-key`, { api_key: input.value });
      input.value = '';
      loginSay(`saved: ${name} uses this key from its next turn (it was kicked to try now)`);
    } catch (err) {
      loginSay(err.message, true);
    }
  });

  const flow = document.getElementById('login-flow');
  const link = document.getElementById('login-url');
  document.getElementById('login-start').addEventListener('click', async (e) => {
    e.target.disabled = true;
    loginSay('starting claude auth login…');
    try {
      const r = await hh.post(`${agentApi}/login/start`, {});
      if (r.url && r.url.startsWith('https://')) {
        link.href = r.url;
        link.textContent = new URL(r.url).host + ' sign-in page';
        flow.hidden = false;
        loginSay('');
      } else {
        loginSay(r.output || `the sign-in ended (${r.state})`, r.state !== 'done');
      }
    } catch (err) {
      loginSay(err.message, true);
    } finally {
      e.target.disabled = false;
    }
  });

  document.getElementById('login-code').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = e.target.querySelector('input[name=code]');
    loginSay('finishing the sign-in…');
    try {
      const r = await hh.post(`${agentApi}/login/code`, { code: input.value });
      input.value = '';
      flow.hidden = r.state !== 'waiting_for_code';
      loginSay(r.state === 'done' ? `${name} is signed in` : r.output || r.state, r.state !== 'done');
    } catch (err) {
      loginSay(err.message, true);
    }
  });

  hh.hooks.push({
    resynced() {
      if (term) term.scrollTop = term.scrollHeight;
    },
  });
})();
