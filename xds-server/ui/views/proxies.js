// The proxies: every connected proxy with its state per xDS type and the proxies' own words
// for what they rejected; one proxy in detail with the resources computed for it.

import { getJson, ApiError } from '../api.js';
import { h, table, link } from '../dom.js';
import { age, json } from '../format.js';
import { MAIN_TYPES, typeStates, shortType, overall } from '../sync.js';

/** A state badge: the word, coloured. */
export function badge(state) {
  return h('span', { class: `state state-${state}` }, state);
}

/** Every rejection of one proxy as list items: "RDS ingress: <message>". */
function problemItems(proxy, states) {
  const items = [];
  for (const [url, s] of states) {
    if (s.state !== 'NACKED') continue;
    const names = s.held.map((x) => x.name).join(', ');
    for (const message of s.messages) {
      items.push(h('li', { 'data-node': proxy.node_id, 'data-type': shortType(url) },
        h('strong', {}, proxy.node_id), ' ', shortType(url), names ? ` ${names}` : '', ' ',
        badge('NACKED'), ': ', h('span', { class: 'message' }, message)));
    }
    for (const x of s.held) {
      const serving = x.serving_version
        ? `is sent version ${x.serving_version} of ${shortType(url)} ${x.name} (the last it accepted)`
        : `is sent no ${shortType(url)} ${x.name} (it never accepted a version of it)`;
      const by = x.rejected_by && x.rejected_by !== proxy.node_id ? ` by ${x.rejected_by}` : '';
      items.push(h('li', { class: 'muted' },
        `${proxy.node_id} ${serving} instead of version ${x.rejected_version}, rejected${by}`));
    }
  }
  return items;
}

export const proxyList = {
  title: () => 'Proxies',
  load: (_params, signal) => getJson('/api/v1/proxies', signal),
  render(data) {
    const proxies = data.items ?? [];
    const view = h('section', {}, h('h1', { id: 'view-title', tabindex: '-1' }, 'Proxies'));
    if (proxies.length === 0) {
      view.append(h('p', { class: 'muted' }, 'No proxy is connected.'));
      return view;
    }
    const rows = [];
    const problems = [];
    for (const p of proxies) {
      const states = typeStates(p);
      const cells = [link(['proxies', p.node_id], p.node_id), p.cluster, p.variant];
      for (const [url] of MAIN_TYPES) {
        const s = states.get(url);
        cells.push(s ? h('span', { 'data-type': shortType(url) }, badge(s.state)) : '—');
      }
      const others = [...states].filter(([url]) => !MAIN_TYPES.some(([t]) => t === url));
      cells.push(others.length ? others.map(([url, s]) => h('span', {}, shortType(url), ' ', badge(s.state), ' ')) : '—');
      cells.push(age(p.connected_since));
      rows.push(cells);
      problems.push(...problemItems(p, states));
    }
    const tableEl = table(`${proxies.length} connected`,
      ['Node', 'Cluster', 'xDS', ...MAIN_TYPES.map(([, n]) => n), 'Other', 'Connected'], rows);
    tableEl.id = 'proxy-table';
    view.append(tableEl);
    view.append(h('h2', {}, 'Rejections'));
    view.append(problems.length
      ? h('ul', { class: 'problems', id: 'rejections' }, problems)
      : h('p', { class: 'muted', id: 'rejections' }, 'No proxy rejects anything.'));
    return view;
  },
  /** "node-1: RDS is now NACKED" for every type whose state changed. */
  changes(before, after) {
    const old = new Map((before?.items ?? []).map((p) => [p.node_id, typeStates(p)]));
    const out = [];
    for (const p of after.items ?? []) {
      const prev = old.get(p.node_id);
      if (!prev) { out.push(`${p.node_id} connected`); continue; }
      for (const [url, s] of typeStates(p)) {
        if (prev.get(url)?.state !== s.state) out.push(`${p.node_id}: ${shortType(url)} is now ${s.state}`);
      }
      old.delete(p.node_id);
    }
    for (const node of old.keys()) out.push(`${node} disconnected`);
    return out;
  },
};

export const proxyDetail = {
  title: ([node]) => `Proxy ${node}`,
  async load([node], signal) {
    const path = `/api/v1/proxies/${encodeURIComponent(node)}`;
    let proxy;
    try {
      proxy = await getJson(path, signal);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return { gone: e.message };
      throw e;
    }
    let config = null;
    let configError = null;
    try {
      config = await getJson(`${path}/config`, signal);
    } catch (e) {
      if (!(e instanceof ApiError) || e.unauthorized) throw e;
      configError = e.message;
    }
    return { proxy, config, configError };
  },
  render(data, [node]) {
    const view = h('section', {}, h('h1', { id: 'view-title', tabindex: '-1' }, `Proxy ${node}`));
    if (data.gone) {
      view.append(h('p', {}, data.gone), h('p', {}, link(['proxies'], 'All proxies')));
      return view;
    }
    const p = data.proxy;
    const states = typeStates(p);
    view.append(h('dl', { class: 'facts' },
      h('dt', {}, 'Cluster'), h('dd', {}, p.cluster),
      h('dt', {}, 'xDS'), h('dd', {}, `${p.variant} over ${p.service} (${p.streams} stream${p.streams === 1 ? '' : 's'})`),
      h('dt', {}, 'Connected'), h('dd', {}, `${age(p.connected_since)} ago (${p.connected_since})`),
      h('dt', {}, 'Overall'), h('dd', {}, badge(overall(states)))));
    view.append(h('h2', {}, 'Sync state'));
    view.append(table(null, ['Type', 'State', 'Sent', 'Acknowledged', 'Resources', 'Proxy says'],
      [...states].map(([url, s]) => [
        shortType(url), h('span', { 'data-type': shortType(url) }, badge(s.state)),
        s.type.version_sent ?? '—', s.type.version_acked ?? '—',
        { value: s.type.resources_sent ?? '—', class: 'num' },
        s.messages.length ? h('span', { class: 'message' }, s.messages.join('\n')) : '—',
      ])));
    const problems = problemItems(p, states);
    if (problems.length) view.append(h('ul', { class: 'problems', id: 'rejections' }, problems));
    view.append(h('h2', {}, 'Config sent to it'));
    if (data.configError) {
      view.append(h('p', { class: 'muted' }, data.configError));
    } else {
      view.append(configSections(data.config ?? {}));
    }
    return view;
  },
  changes(before, after) {
    if (!before?.proxy || !after?.proxy) return [];
    return proxyList.changes({ items: [before.proxy] }, { items: [after.proxy] });
  },
};

/** The resources of `GET /api/v1/proxies/{id}/config`, one collapsible block each. */
function configSections(config) {
  const { warnings = [], ...byType } = config;
  const out = h('div', {});
  for (const w of warnings) out.append(h('p', { class: 'error' }, 'Warning: ', typeof w === 'string' ? w : json(w)));
  const urls = Object.keys(byType);
  if (urls.length === 0) out.append(h('p', { class: 'muted' }, 'Nothing is sent to this proxy.'));
  for (const url of urls) {
    const resources = byType[url] ?? {};
    out.append(h('h3', {}, `${shortType(url)} `, h('span', { class: 'muted' }, `(${url})`)));
    for (const [name, r] of Object.entries(resources)) {
      out.append(h('details', { 'data-key': `${url}/${name}` },
        h('summary', {}, name, ' ', h('span', { class: 'muted' }, `version ${r.version}`)),
        h('pre', {}, json(r.resource))));
    }
  }
  return out;
}
