// How numbers, times and type URLs read in the console.

/** "3.2/s", "0/s", "—" when unknown. */
export function rate(v) {
  if (v == null || Number.isNaN(v)) return '—';
  return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + '/s';
}

/** A ratio 0..1 as "99.5 %"; "—" when unknown (no requests). */
export function percent(v) {
  if (v == null || Number.isNaN(v)) return '—';
  const p = v * 100;
  return (p === 100 || p === 0 ? p.toFixed(0) : p.toFixed(p >= 99 ? 2 : 1)) + ' %';
}

/** Milliseconds as "12 ms" or "1.25 s"; "—" when unknown. */
export function ms(v) {
  if (v == null || Number.isNaN(v)) return '—';
  if (v >= 1000) return (v / 1000).toFixed(2) + ' s';
  return (v >= 10 ? v.toFixed(0) : v.toFixed(2)) + ' ms';
}

/** "3m 20s ago" from an RFC 3339 time. */
export function age(time, now = Date.now()) {
  const t = Date.parse(time);
  if (Number.isNaN(t)) return '—';
  let s = Math.max(0, Math.round((now - t) / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

/** A local wall-clock time "23:40:01". */
export function clock(date = new Date()) {
  return date.toLocaleTimeString([], { hour12: false });
}

/** Pretty JSON for a <pre>. */
export function json(v) {
  return JSON.stringify(v, null, 2);
}
