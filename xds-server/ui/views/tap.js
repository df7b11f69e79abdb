// The live tap: a form of filters, then one row per request the proxies report, newest first,
// streamed from `GET /api/v1/tap` (server-sent events) while the page is open. Leaving the
// page or pressing Stop closes the stream, and the server stops logging.

import { readEvents, ApiError } from '../api.js';
import { h } from '../dom.js';
import { ms } from '../format.js';

/** Rows kept on screen; older ones scroll away. */
const MAX_ROWS = 200;
const FILTERS = [
  ['service', 'Service', ''], ['route', 'Route', ''], ['node_id', 'Node id', ''],
  ['path_prefix', 'Path prefix', '/'], ['status', 'Status', '5xx or 503'],
];

export const tapView = {
  title: () => 'Live tap',
  /** Renders into `container`; returns what to call when the page is left. */
  mount(container, _params, announce, onUnauthorized) {
    let controller = null;
    let count = 0;
    const inputs = FILTERS.map(([name, label, placeholder]) =>
      h('label', {}, label, h('input', { name, id: `tap-${name}`, placeholder, autocomplete: 'off' })));
    const start = h('button', { type: 'submit', id: 'tap-start' }, 'Start');
    const stop = h('button', { type: 'button', id: 'tap-stop', class: 'secondary', disabled: true }, 'Stop');
    const state = h('p', { id: 'tap-state', 'aria-live': 'polite' }, 'Not tapping.');
    const counter = h('p', { class: 'muted', id: 'tap-count' }, '');
    const body = h('tbody', {});
    const rows = h('table', { id: 'tap-rows' },
      h('caption', {}, 'Requests, newest first'),
      h('thead', {}, h('tr', {}, ['Time', 'Proxy', 'Method', 'Authority', 'Path', 'Status',
        'Duration', 'Upstream', 'Flags'].map((c) => h('th', { scope: 'col' }, c)))),
      body);
    const form = h('form', { class: 'tap', onsubmit: (e) => { e.preventDefault(); open(); } },
      inputs, start, stop);
    stop.addEventListener('click', () => close('Stopped.'));
    container.replaceChildren(h('section', {},
      h('h1', { id: 'view-title', tabindex: '-1' }, 'Live tap'),
      h('p', { class: 'muted' }, 'Every request the selected proxies serve, as it happens. '
        + 'Proxies log only while a tap is open.'),
      form, state, counter, rows));

    function query() {
      const q = new URLSearchParams();
      for (const [name] of FILTERS) {
        const v = form.elements[name].value.trim();
        if (v) q.set(name, v);
      }
      return q.toString();
    }

    async function open() {
      close(null);
      const c = new AbortController();
      controller = c;
      count = 0;
      body.replaceChildren();
      counter.textContent = '';
      start.disabled = true;
      stop.disabled = false;
      state.textContent = 'Opening the tap…';
      const q = query();
      try {
        await readEvents('/api/v1/tap' + (q ? '?' + q : ''), c.signal, (name, data) => {
          if (name === 'open') state.textContent = `Tapping (${data.tap ?? 'open'}, at most ${data.max_events_per_second ?? '?'} requests/s).`;
          else if (name === 'request') row(data);
          else if (name === 'dropped') announce(`${data.dropped} requests were not shown (over the tap's rate)`);
        });
        if (controller === c) close('The server ended the tap.');
      } catch (e) {
        if (e?.name === 'AbortError') return;
        if (e instanceof ApiError && e.endpointMissing) close('The live tap is not available on this server.');
        else if (e instanceof ApiError && e.unauthorized) { close(null); onUnauthorized(); }
        else close(`The tap failed: ${e.message}`);
      }
    }

    function close(message) {
      controller?.abort();
      controller = null;
      start.disabled = false;
      stop.disabled = true;
      if (message) state.textContent = message;
    }

    function row(r) {
      count += 1;
      counter.textContent = `${count} request${count === 1 ? '' : 's'}`;
      const time = r.time ? new Date(r.time).toLocaleTimeString([], { hour12: false }) : '—';
      body.prepend(h('tr', {},
        h('td', {}, time), h('td', {}, r.node_id ?? '—'), h('td', {}, r.method ?? '—'),
        h('td', {}, r.authority ?? '—'), h('td', { class: 'message' }, r.path ?? '—'),
        h('td', { class: 'num' }, r.status ?? '—'), h('td', { class: 'num' }, ms(r.duration_ms)),
        h('td', {}, r.upstream_host ?? '—'), h('td', {}, (r.response_flags ?? []).join(',') || '—')));
      while (body.rows.length > MAX_ROWS) body.lastElementChild.remove();
    }

    return () => close(null);
  },
};
