// Services: each with its golden metrics (requests/s, success rate, latency percentiles, as
// the proxies report them), its endpoints and their health, and its status block. The
// metrics endpoints may be missing on an older server: the console says "not available".

import { getJson, getOptional, ApiError } from '../api.js';
import { h, table, link } from '../dom.js';
import { rate, percent, ms } from '../format.js';
import { STATUS_COLUMNS, statusCells, statusSection } from './objects.js';

/** The windows the server computes (`?window=`), longest first. */
const WINDOWS = [['1m', 'Last minute'], ['10s', 'Last 10 seconds']];

/**
 * The golden metrics of one entry of the stats API (a service, or one of its routes or
 * proxies) as the console shows them: `{requests, rps, success, p50, p95, p99}`; a figure is
 * null when there were no requests (no rate of success, no latency).
 */
export function golden(entry) {
  if (!entry) return null;
  const latency = entry.latency_ms ?? {};
  return {
    requests: entry.requests ?? null,
    rps: entry.requests_per_second ?? null,
    success: entry.success_rate ?? null,
    p50: latency.p50 ?? null,
    p95: latency.p95 ?? null,
    p99: latency.p99 ?? null,
  };
}

const METRIC_COLUMNS = [
  { value: 'Requests/s', class: 'num' }, { value: 'Success', class: 'num' },
  { value: 'p50', class: 'num' }, { value: 'p95', class: 'num' }, { value: 'p99', class: 'num' },
];

function metricCells(g) {
  return [
    { value: rate(g?.rps), class: 'num' }, { value: percent(g?.success), class: 'num' },
    { value: ms(g?.p50), class: 'num' }, { value: ms(g?.p95), class: 'num' },
    { value: ms(g?.p99), class: 'num' },
  ];
}

/** The per-service entries of `GET /api/v1/stats`, by name. */
function byService(stats) {
  return new Map((stats?.items ?? []).map((s) => [s.service, s]));
}

export const serviceList = {
  title: () => 'Services',
  async load(_p, signal) {
    const [services, stats] = await Promise.all([
      getJson('/api/v1/services?limit=1000', signal),
      getOptional('/api/v1/stats', signal),
    ]);
    return { services, stats };
  },
  render({ services, stats }) {
    const items = services.items ?? [];
    const view = h('section', {}, h('h1', { id: 'view-title', tabindex: '-1' }, 'Services'));
    if (stats === null) {
      view.append(h('p', { class: 'muted', id: 'metrics-note' },
        'Golden metrics: not available on this server.'));
    }
    if (items.length === 0) {
      view.append(h('p', { class: 'muted' }, 'No services yet.'));
      return view;
    }
    const metrics = byService(stats);
    view.append(table(`${items.length} services; metrics over the last minute`,
      ['Name', 'Protocol', ...METRIC_COLUMNS, ...STATUS_COLUMNS],
      items.map((s) => [link(['services', s.name], s.name), s.protocol ?? '—',
        ...metricCells(golden(metrics.get(s.name))), ...statusCells(s.status)])));
    return view;
  },
};

export const serviceDetail = {
  title: ([name]) => `Service ${name}`,
  async load([name], signal) {
    const base = `/api/v1/services/${encodeURIComponent(name)}`;
    let service;
    try {
      service = await getJson(base, signal);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return { missing: e.message };
      throw e;
    }
    const stats = (window) => getOptional(`${base}/stats?window=${window}`, signal).catch((e) => {
      if (e instanceof ApiError && !e.unauthorized) return { error: e.message };
      throw e;
    });
    const [endpoints, ...windows] = await Promise.all([
      getJson(`${base}/endpoints`, signal), ...WINDOWS.map(([w]) => stats(w)),
    ]);
    return { service, endpoints, windows };
  },
  render(data, [name]) {
    const view = h('section', {}, h('h1', { id: 'view-title', tabindex: '-1' }, `Service ${name}`));
    if (data.missing) {
      view.append(h('p', {}, data.missing), h('p', {}, link(['services'], 'All services')));
      return view;
    }
    const { service, endpoints, windows } = data;
    view.append(h('p', { class: 'muted' },
      `${service.protocol ?? 'http'} · version ${service.version}, updated ${service.updated_at}`));

    view.append(h('h2', { id: 'metrics-title' }, 'Golden metrics'));
    const metrics = h('div', { id: 'golden-metrics', 'aria-labelledby': 'metrics-title' });
    if (windows.every((w) => w === null)) {
      metrics.append(h('p', { class: 'muted' }, 'Not available on this server.'));
    }
    WINDOWS.forEach(([window, label], i) => {
      const stats = windows[i];
      if (stats === null) return;
      metrics.append(h('h3', {}, label));
      if (stats.error) {
        metrics.append(h('p', { class: 'error' }, stats.error));
        return;
      }
      const g = golden(stats);
      metrics.append(h('div', { class: 'metrics', 'data-window': window },
        tile('Requests/s', rate(g.rps), 'rps'), tile('Success rate', percent(g.success), 'success'),
        tile('p50', ms(g.p50), 'p50'), tile('p95', ms(g.p95), 'p95'), tile('p99', ms(g.p99), 'p99')));
      if (window !== '1m') return;
      if ((stats.routes ?? []).length) {
        metrics.append(table('By route (the whole route, over every service it sends to)',
          ['Route', ...METRIC_COLUMNS],
          stats.routes.map((r) => [link(['routes', r.route], r.route), ...metricCells(golden(r))])));
      }
      if ((stats.proxies ?? []).length) {
        metrics.append(table('By calling proxy', ['Proxy', ...METRIC_COLUMNS],
          stats.proxies.map((p) => [link(['proxies', p.node_id], p.node_id), ...metricCells(golden(p))])));
      }
    });
    view.append(metrics);

    const list = endpoints.endpoints ?? [];
    view.append(h('h2', {}, 'Endpoints'));
    view.append(list.length
      ? table(`${list.length} endpoints`, ['Address', { value: 'Weight', class: 'num' }, 'Zone', 'Labels', 'Health'],
        list.map((e) => [`${e.address}:${e.port}`, { value: e.weight ?? 1, class: 'num' }, e.zone ?? '—',
          Object.entries(e.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || '—',
          h('span', { class: `state state-${e.health ?? 'healthy'}` }, e.health ?? 'healthy')]))
      : h('p', { class: 'muted' }, 'No endpoints.'));
    view.append(statusSection(service.status, 'this service\'s cluster'));
    return view;
  },
};

function tile(label, value, name) {
  return h('div', { class: 'metric', 'data-metric': name },
    h('span', { class: 'label' }, label), h('span', { class: 'value' }, value));
}
