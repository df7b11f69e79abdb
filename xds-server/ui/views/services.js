// Services: each with its golden metrics (requests/s, success rate, latency percentiles, as
// the proxies report them), its endpoints and their health, and its status block. The
// metrics endpoints may be missing on an older server: the console says "not available".

import { getJson, getOptional, ApiError } from '../api.js';
import { h, table, link } from '../dom.js';
import { rate, percent, ms } from '../format.js';
import { STATUS_COLUMNS, statusCells, statusSection } from './objects.js';

/** The windows the server computes, longest first. */
const WINDOWS = ['1m', '10s'];

/**
 * One window of golden metrics as the console shows it, from one entry of the stats API:
 * `{rps, success, p50, p95, p99}` (any may be null: no requests, no figure).
 */
export function golden(entry, window = '1m') {
  const w = entry?.windows?.[window] ?? entry?.[window] ?? null;
  if (!w) return null;
  const latency = w.latency_ms ?? {};
  return {
    rps: w.requests_per_second ?? null,
    success: w.success_rate ?? null,
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
  const list = stats?.services ?? stats?.items ?? [];
  const out = new Map();
  if (Array.isArray(list)) for (const s of list) out.set(s.service ?? s.name, s);
  else for (const [name, s] of Object.entries(list)) out.set(name, s);
  return out;
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
    const [endpoints, stats] = await Promise.all([
      getJson(`${base}/endpoints`, signal),
      getOptional(`${base}/stats`, signal).catch((e) => {
        if (e instanceof ApiError && !e.unauthorized) return { error: e.message };
        throw e;
      }),
    ]);
    return { service, endpoints, stats };
  },
  render(data, [name]) {
    const view = h('section', {}, h('h1', { id: 'view-title', tabindex: '-1' }, `Service ${name}`));
    if (data.missing) {
      view.append(h('p', {}, data.missing), h('p', {}, link(['services'], 'All services')));
      return view;
    }
    const { service, endpoints, stats } = data;
    view.append(h('p', { class: 'muted' },
      `${service.protocol ?? 'http'} · version ${service.version}, updated ${service.updated_at}`));

    view.append(h('h2', { id: 'metrics-title' }, 'Golden metrics'));
    const metrics = h('div', { id: 'golden-metrics', 'aria-labelledby': 'metrics-title' });
    if (stats === null) {
      metrics.append(h('p', { class: 'muted' }, 'Not available on this server.'));
    } else if (stats.error) {
      metrics.append(h('p', { class: 'error' }, stats.error));
    } else {
      for (const window of WINDOWS) {
        const g = golden(stats, window);
        metrics.append(h('h3', {}, window === '1m' ? 'Last minute' : 'Last 10 seconds'));
        metrics.append(h('div', { class: 'metrics', 'data-window': window },
          tile('Requests/s', rate(g?.rps), 'rps'), tile('Success rate', percent(g?.success), 'success'),
          tile('p50', ms(g?.p50), 'p50'), tile('p95', ms(g?.p95), 'p95'), tile('p99', ms(g?.p99), 'p99')));
      }
    }
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
    h('span', { class: 'value' }, value), h('span', { class: 'label' }, label));
}
