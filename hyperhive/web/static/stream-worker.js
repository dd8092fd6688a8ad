// hyperhive: one live stream per hive for every tab of this browser (a SharedWorker).
//
// A browser opens at most six HTTP/1.1 connections to one origin, and every open
// EventSource holds one: with one per tab, the seventh tab of the dashboard would
// hang. So the tabs share: this worker keeps one EventSource per hive and hands each
// update to every tab listening to that hive. Each tab skips what it already has (by
// sequence), so a tab may join at any point: what it missed since its page was
// rendered comes from the last updates kept here, or the tab takes a snapshot.
'use strict';

const KEEP = 1000; // updates kept per hive for tabs that join a little behind
const hives = new Map(); // hive -> {source, ports, lastSeq, recent, status}

function broadcast(entry, message) {
  for (const port of entry.ports) port.postMessage(message);
}

function open(hive, since) {
  const entry = hives.get(hive) || { source: null, ports: new Set(), lastSeq: since, recent: [], status: null };
  hives.set(hive, entry);
  if (entry.source) entry.source.close();
  entry.lastSeq = since;
  const source = new EventSource(`/api/h/${encodeURIComponent(hive)}/stream?since=${since}`);
  entry.source = source;
  source.addEventListener('update', (e) => {
    const seq = Number(e.lastEventId);
    if (seq <= entry.lastSeq) return;
    entry.lastSeq = seq;
    entry.recent.push([seq, e.data]);
    if (entry.recent.length > KEEP) entry.recent.splice(0, entry.recent.length - KEEP);
    broadcast(entry, { type: 'update', data: e.data });
  });
  source.addEventListener('status', (e) => {
    entry.status = e.data;
    broadcast(entry, { type: 'status', data: e.data });
  });
  source.addEventListener('resync', (e) => {
    // This stream fell too far behind: every tab takes a snapshot, the stream starts
    // again right at the server's present.
    const seq = JSON.parse(e.data).seq;
    entry.recent = [];
    broadcast(entry, { type: 'resync' });
    open(hive, seq);
  });
  source.onopen = () => broadcast(entry, { type: 'open' });
  source.onerror = () => {
    broadcast(entry, { type: 'broken' });
    if (source.readyState === EventSource.CLOSED) {
      // refused (signed out?) or gone: the tabs decide; try again later if any remain
      setTimeout(() => {
        if (entry.source === source && entry.ports.size) open(hive, entry.lastSeq);
      }, 2000);
    }
  };
  return entry;
}

function listen(port, hive, since) {
  let entry = hives.get(hive);
  if (!entry || !entry.source) entry = open(hive, since);
  entry.ports.add(port);
  if (entry.status) port.postMessage({ type: 'status', data: entry.status });
  if (since < entry.lastSeq) {
    const oldest = entry.recent.length ? entry.recent[0][0] : Infinity;
    if (since + 1 < oldest) {
      port.postMessage({ type: 'resync' }); // older than what is kept here
    } else {
      for (const [seq, data] of entry.recent) if (seq > since) port.postMessage({ type: 'update', data });
    }
  }
  port.postMessage({ type: 'listening' });
}

function leave(port) {
  for (const [hive, entry] of hives) {
    entry.ports.delete(port);
    if (!entry.ports.size && entry.source) {
      entry.source.close();
      hives.delete(hive);
    }
  }
}

self.onconnect = (event) => {
  const port = event.ports[0];
  port.onmessage = (m) => {
    const msg = m.data || {};
    if (msg.type === 'listen') listen(port, String(msg.hive), Number(msg.since) || 0);
    else if (msg.type === 'bye') leave(port);
  };
  port.start();
};
