// Building DOM from nodes, never from markup strings (nothing from the API is parsed as
// HTML), and replacing a view in place without losing the reader's place: focus, open <details>.

/** `h('a', {href: '#/x'}, 'text', child)`: attributes (`on…` are listeners), then children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** A table with column headers; `rows` are arrays of cells (a cell is a node, text, or
 * `{value, class}`). */
export function table(caption, headers, rows) {
  const cell = (tag, c) =>
    c != null && typeof c === 'object' && !(c instanceof Node)
      ? h(tag, { class: c.class }, c.value)
      : h(tag, {}, c);
  return h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((c) => {
      const th = cell('th', c);
      th.setAttribute('scope', 'col');
      return th;
    }))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => cell('td', c))))));
}

/** The link to a console page: `#/kind/name` with the name encoded. */
export function link(path, text) {
  const href = '#/' + path.map(encodeURIComponent).join('/');
  return h('a', { href }, text);
}

/** Replaces `container`'s content with `node`, keeping focus on the equivalent element (same
 * `data-key`, link target or id) and the same `<details data-key>` open. */
export function replaceKeepingFocus(container, node) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? focusKey(active) : null;
  const open = new Set(
    [...container.querySelectorAll('details[open][data-key]')].map((d) => d.dataset.key));
  container.replaceChildren(node);
  for (const d of container.querySelectorAll('details[data-key]')) {
    if (open.has(d.dataset.key)) d.open = true;
  }
  if (key) {
    const again = [...container.querySelectorAll('a, button, summary, input, [tabindex]')]
      .find((el) => focusKey(el) === key);
    again?.focus({ preventScroll: true });
  }
}

function focusKey(el) {
  if (el.dataset?.key) return 'key:' + el.dataset.key;
  if (el.tagName === 'SUMMARY' && el.parentElement?.dataset.key) {
    return 'summary:' + el.parentElement.dataset.key;
  }
  if (el.id) return 'id:' + el.id;
  const href = el.getAttribute?.('href');
  return href ? 'href:' + href : null;
}
