// Whether a proxy runs what the mesh wants, per xDS type, as `meshctl proxy-status` shows it:
// SYNCED (acknowledged the last thing sent), STALE (sent, not answered yet), NACKED (it
// rejected something). With last-known-good the server answers a rejection by sending the
// proxy's previous version of the resource, which the proxy then acknowledges: the type's
// own status says SYNCED again while `held_back` still names the rejected resource. The
// console counts that as NACKED, with the proxy's message, until the mesh changes so that
// nothing is held back.

/** The four main types in ADS order, with their short names. */
export const MAIN_TYPES = [
  ['type.googleapis.com/envoy.config.cluster.v3.Cluster', 'CDS'],
  ['type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment', 'EDS'],
  ['type.googleapis.com/envoy.config.listener.v3.Listener', 'LDS'],
  ['type.googleapis.com/envoy.config.route.v3.RouteConfiguration', 'RDS'],
];

const SHORT = new Map([
  ...MAIN_TYPES,
  ['type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration', 'SRDS'],
  ['type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret', 'SDS'],
  ['type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig', 'ECDS'],
  ['type.googleapis.com/envoy.service.runtime.v3.Runtime', 'RTDS'],
]);

/** "RDS" for the route configuration's type URL; the message name for others. */
export function shortType(url) {
  return SHORT.get(url) ?? String(url).split('.').pop();
}

/** `ADS order, then the rest by name` for a list of type URLs. */
export function orderTypes(urls) {
  const rank = (u) => {
    const i = MAIN_TYPES.findIndex(([t]) => t === u);
    return i < 0 ? MAIN_TYPES.length : i;
  };
  return [...urls].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/**
 * One proxy (an item of `GET /api/v1/proxies`) → `Map<typeUrl, {state, status, messages,
 * held}>`: `status` is what the server reports for the type, `state` what the console shows,
 * `messages` the proxy's words for each rejection, `held` the held-back entries of the type.
 */
export function typeStates(proxy) {
  const out = new Map();
  const types = proxy?.types ?? {};
  const held = Array.isArray(proxy?.held_back) ? proxy.held_back : [];
  const urls = new Set([...Object.keys(types), ...held.map((x) => x.type_url)]);
  for (const url of orderTypes(urls)) {
    const t = types[url] ?? {};
    const heldOfType = held.filter((x) => x.type_url === url);
    const messages = [];
    if (t.error_detail) messages.push(t.error_detail);
    for (const x of heldOfType) if (x.message && !messages.includes(x.message)) messages.push(x.message);
    let state = t.status ?? 'STALE';
    if (state !== 'NACKED' && heldOfType.length > 0) state = 'NACKED';
    out.set(url, { state, status: t.status ?? null, messages, held: heldOfType, type: t });
  }
  return out;
}

/** The worst state over all types: NACKED over STALE over SYNCED. */
export function overall(states) {
  let worst = 'SYNCED';
  for (const { state } of states.values()) {
    if (state === 'NACKED') return 'NACKED';
    if (state === 'STALE') worst = 'STALE';
  }
  return worst;
}
