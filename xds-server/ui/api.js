// The REST API as the console reads it: JSON over fetch, the admin token (when the server
// asks for one) as a bearer header kept in sessionStorage, never in a URL; server-sent events
// read from a fetch body, because EventSource cannot send a header.

const TOKEN_KEY = 'xds-console.admin-token';

/** The admin token for this tab's session. */
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An answer other than 2xx, with the API's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }

  /** 401: the server wants a token, or refused the one sent. */
  get unauthorized() { return this.status === 401; }

  /** 404 from the API's fallback: this server has no such endpoint (an older build). */
  get endpointMissing() {
    return this.status === 404 && /no such API path/.test(this.message);
  }
}

function headers(accept) {
  const h = { Accept: accept };
  const t = token.get();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

async function failure(res) {
  let code = 'http_' + res.status;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    const e = body?.error;
    if (e && typeof e === 'object') { code = e.code ?? code; message = e.message ?? message; }
    else if (typeof e === 'string') message = e;
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(res.status, code, message);
}

/** `GET path` as JSON; throws [`ApiError`] for any other answer. */
export async function getJson(path, signal) {
  const res = await fetch(path, { headers: headers('application/json'), signal, cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  return res.json();
}

/** `GET path` as JSON, or `null` when the server has no such endpoint (404 from the API's
 * fallback) — for endpoints newer builds add. */
export async function getOptional(path, signal) {
  try {
    return await getJson(path, signal);
  } catch (e) {
    if (e instanceof ApiError && e.endpointMissing) return null;
    throw e;
  }
}

/**
 * Reads the server-sent events of `GET path`, calling `onEvent(name, data)` for each (data
 * parsed as JSON when it is JSON), until the stream ends or `signal` aborts.
 */
export async function readEvents(path, signal, onEvent) {
  const res = await fetch(path, { headers: headers('text/event-stream'), signal, cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseEvent(block);
      if (event) onEvent(event.name, event.data);
    }
  }
}

/** One SSE block → `{name, data}`; `null` for comments (keep-alives). */
export function parseEvent(block) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return null;
  const text = data.join('\n');
  try { return { name, data: JSON.parse(text) }; } catch { return { name, data: text }; }
}
