// The console's entry point: hash routes (#/proxies, #/routes/main, …) to views, one poll
// loop that reloads the view on screen and re-renders it only when its data changed (keeping
// focus), announcements of state changes for screen readers, and the admin token prompt.

import { ApiError, token } from './api.js';
import { replaceKeepingFocus, h } from './dom.js';
import { clock } from './format.js';
import { Poller } from './live.js';
import { proxyList, proxyDetail } from './views/proxies.js';
import { objectList, objectDetail } from './views/objects.js';
import { serviceList, serviceDetail } from './views/services.js';
import { tapView } from './views/tap.js';
import { tokenPrompt } from './views/token.js';

/** ms between the end of one poll and the start of the next. */
const POLL_INTERVAL = 1500;
/** ms after which a view is re-rendered even when its data did not change. */
const AGE_REFRESH = 10000;

/** `[first path segment, has a name] → view`. */
const ROUTES = {
  proxies: [proxyList, proxyDetail],
  services: [serviceList, serviceDetail],
  routes: [objectList('routes'), objectDetail('routes')],
  listeners: [objectList('listeners'), objectDetail('listeners')],
  'envoy-resources': [objectList('envoy-resources'), objectDetail('envoy-resources')],
  tap: [tapView, null],
};

const viewEl = document.getElementById('view');
const connEl = document.getElementById('conn');
const announcer = document.getElementById('announce');

/** What is on screen: the view, its parameters, the data last rendered. */
let page = null;
/** The page left when the token prompt appeared, to come back to. */
let wantsToken = false;

const poller = new Poller(POLL_INTERVAL, tick, (paused) =>
  setConn(paused ? 'paused' : 'live', paused ? 'Paused while this tab is hidden' : 'Live'));

/** Says something once to screen readers (and nothing when it has not changed). */
function announce(text) {
  if (!text) return;
  announcer.textContent = '';
  // A fresh text node in a live region is read even when the words repeat.
  requestAnimationFrame(() => { announcer.textContent = text; });
}

let connState = null;
function setConn(state, text) {
  connEl.dataset.state = state;
  connEl.textContent = text;
  if (state !== connState && connState !== null && state !== 'live') announce(text);
  if (state === 'live' && connState === 'error') announce('Connection to the server restored');
  connState = state;
}

function parse(hash) {
  if (!hash.startsWith('#/')) return null;
  const parts = hash.slice(2).split('/').filter((p) => p !== '').map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  const [section = 'proxies', ...rest] = parts;
  const views = ROUTES[section];
  if (!views) return { section, view: null, params: [] };
  const view = rest.length ? views[1] : views[0];
  return { section, view, params: rest };
}

function navigate(userAction) {
  const route = parse(location.hash || '#/proxies');
  if (!route) return; // an in-page anchor, not a page
  page?.destroy?.();
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#/${route.section}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!route.view) {
    poller.stop();
    page = null;
    viewEl.replaceChildren(h('section', {}, h('h1', { id: 'view-title', tabindex: '-1' }, 'Not found'),
      h('p', {}, `The console has no page '${location.hash}'. `, h('a', { href: '#/proxies' }, 'Proxies'))));
    settle(userAction);
    return;
  }
  page = { ...route, data: undefined, rendered: false, focusTitle: userAction };
  document.title = `${route.view.title(route.params)} · xds-server`;
  if (route.view.mount) {
    poller.stop();
    page.destroy = route.view.mount(viewEl, route.params, announce,
      () => needToken(token.get() !== null));
    setConn('live', 'Live');
    settle(userAction);
    return;
  }
  viewEl.replaceChildren(h('section', {}, h('h1', { id: 'view-title', tabindex: '-1' },
    route.view.title(route.params)), h('p', { class: 'muted' }, 'Loading…')));
  settle(userAction);
  poller.now();
}

/** After a page change by the reader: focus its heading, so reading starts there. */
function settle(userAction) {
  if (userAction) viewEl.querySelector('h1')?.focus({ preventScroll: false });
}

async function tick(signal) {
  const current = page;
  if (!current || wantsToken) return;
  let data;
  try {
    data = await current.view.load(current.params, signal);
  } catch (e) {
    if (e?.name === 'AbortError' || current !== page) return;
    if (e instanceof ApiError && e.unauthorized) {
      needToken(token.get() !== null);
      return;
    }
    const message = e instanceof ApiError ? e.message : `cannot reach the server (${e.message})`;
    setConn('error', `Not updating: ${message}`);
    if (!current.rendered) {
      viewEl.replaceChildren(h('section', {}, h('h1', { id: 'view-title', tabindex: '-1' },
        current.view.title(current.params)), h('p', { class: 'error', role: 'alert' }, message)));
    }
    return;
  }
  if (current !== page) return;
  setConn('live', `Live · updated ${clock()}`);
  const text = JSON.stringify(data);
  // Unchanged data is re-rendered only now and then, for the ages it shows ("3m 20s").
  if (current.rendered && text === current.text && Date.now() - current.renderedAt < AGE_REFRESH) return;
  const before = current.data;
  current.data = data;
  current.text = text;
  replaceKeepingFocus(viewEl, current.view.render(data, current.params));
  if (current.rendered && current.view.changes) {
    const changes = current.view.changes(before, data);
    if (changes.length) announce(changes.slice(0, 5).join('. '));
  }
  if (!current.rendered && current.focusTitle) viewEl.querySelector('h1')?.focus();
  current.rendered = true;
  current.renderedAt = Date.now();
}

/** Shows the token prompt (`refused`: the token sent was wrong) until one is entered. */
function needToken(refused) {
  if (refused) token.clear();
  wantsToken = true;
  poller.stop();
  setConn('paused', 'Waiting for the admin token');
  tokenPrompt(viewEl, refused, () => {
    wantsToken = false;
    navigate(true);
  });
}

document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault();
  document.getElementById('main').focus();
});
window.addEventListener('hashchange', () => { if (!wantsToken) navigate(true); });
navigate(false);
