// Routes, listeners and raw Envoy resources: lists with each object's read-only `status`
// block (how many proxies fetch it, received its current version, accepted it, and each
// rejection with the proxy's message), and one object in detail.

import { getJson, ApiError } from '../api.js';
import { h, table, link } from '../dom.js';
import { json } from '../format.js';
import { shortType } from '../sync.js';
import { badge } from './proxies.js';

/** What each kind shows in its list besides the status columns. */
const KINDS = {
  routes: {
    title: 'Routes', singular: 'Route',
    columns: ['Hosts', 'Rules'],
    cells: (o) => [(o.hosts ?? []).join(', '), { value: (o.rules ?? []).length, class: 'num' }],
  },
  listeners: {
    title: 'Listeners', singular: 'Listener',
    columns: ['Address', 'Protocol', 'Routes'],
    cells: (o) => [`${o.address}:${o.port}`, o.protocol ?? '—',
      (o.routes ?? []).length ? (o.routes ?? []).flatMap((r, i) => [i ? ', ' : '', link(['routes', r], r)]) : '—'],
  },
  'envoy-resources': {
    title: 'Envoy resources', singular: 'Envoy resource',
    columns: ['Type'],
    cells: (o) => [shortType(o.type_url)],
  },
};

/** The status block as table cells: proxies, received, accepted, rejections. */
export function statusCells(status) {
  const s = status ?? {};
  const rejected = s.rejected ?? [];
  return [
    { value: s.proxies ?? '—', class: 'num' },
    { value: s.received ?? '—', class: 'num' },
    { value: s.accepted ?? '—', class: 'num' },
    rejected.length ? h('span', {}, badge('NACKED'), ` ${rejected.length}`) : '0',
  ];
}

export const STATUS_COLUMNS = [
  { value: 'Proxies', class: 'num' }, { value: 'Received', class: 'num' },
  { value: 'Accepted', class: 'num' }, 'Rejections',
];

/** The status block in full: the counts, then every rejection with the proxy's words. */
export function statusSection(status, what) {
  const s = status ?? {};
  const rejected = s.rejected ?? [];
  const out = h('section', { 'aria-labelledby': 'status-title' },
    h('h2', { id: 'status-title' }, 'Status'),
    h('p', { id: 'status-counts' },
      `${count(s.proxies, 'proxy fetches', 'proxies fetch')} ${what}; ${s.received ?? 0} received its `
      + `current version; ${s.accepted ?? 0} accepted it.`));
  if (rejected.length === 0) {
    out.append(h('p', { class: 'muted', id: 'status-rejections' }, 'No proxy rejects it.'));
  } else {
    const t = table(`${rejected.length} rejection${rejected.length === 1 ? '' : 's'}`,
      ['Proxy', 'Type', 'Resource', 'Message'],
      rejected.map((r) => [link(['proxies', r.node_id], r.node_id), shortType(r.type_url), r.resource,
        h('span', { class: 'message' }, r.message)]));
    t.id = 'status-rejections';
    out.append(t);
  }
  return out;
}

/** "1 proxy", "3 proxies". */
export function count(n, one, many) {
  return `${n ?? 0} ${n === 1 ? one : many}`;
}

/** The list page of one kind. */
export function objectList(kind) {
  const k = KINDS[kind];
  return {
    title: () => k.title,
    load: (_p, signal) => getJson(`/api/v1/${kind}?limit=1000`, signal),
    render(data) {
      const items = data.items ?? [];
      const view = h('section', {}, h('h1', { id: 'view-title', tabindex: '-1' }, k.title));
      if (items.length === 0) {
        view.append(h('p', { class: 'muted' }, `No ${k.title.toLowerCase()} yet.`));
        return view;
      }
      view.append(table(data.next_page_token ? `The first ${items.length}` : `${items.length} in all`,
        ['Name', ...k.columns, ...STATUS_COLUMNS],
        items.map((o) => [link([kind, o.name], o.name), ...k.cells(o), ...statusCells(o.status)])));
      return view;
    },
  };
}

/** One object: its status block first (what operators come for), then its definition. */
export function objectDetail(kind) {
  const k = KINDS[kind];
  return {
    title: ([name]) => `${k.singular} ${name}`,
    async load([name], signal) {
      try {
        return await getJson(`/api/v1/${kind}/${encodeURIComponent(name)}`, signal);
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return { missing: e.message };
        throw e;
      }
    },
    render(o, [name]) {
      const view = h('section', {}, h('h1', { id: 'view-title', tabindex: '-1' }, `${k.singular} ${name}`));
      if (o.missing) {
        view.append(h('p', {}, o.missing), h('p', {}, link([kind], `All ${k.title.toLowerCase()}`)));
        return view;
      }
      view.append(h('p', { class: 'muted' }, `Version ${o.version}, updated ${o.updated_at}`));
      view.append(statusSection(o.status, `something this ${k.singular.toLowerCase()} made`));
      const { status: _s, name: _n, version: _v, created_at: _c, updated_at: _u, ...spec } = o;
      view.append(h('h2', {}, 'Definition'), h('pre', {}, json(spec)));
      return view;
    },
    changes(before, after) {
      const n = (o) => o?.status?.rejected?.length ?? 0;
      if (!before || n(before) === n(after)) return [];
      return [n(after) ? `${count(n(after), 'proxy rejects', 'proxies reject')} this ${k.singular.toLowerCase()}` : `No proxy rejects this ${k.singular.toLowerCase()} now`];
    },
  };
}
