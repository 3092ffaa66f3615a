// Small DOM helpers: building elements, formatting, and showing problems.

/** h('button', {onclick, class: 'x'}, 'text', child) → an element. */
export function h(tag, attrs = {}, ...children) {
  const el = tag === 'svg' || attrs.svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false || key === 'svg') continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'value' && 'value' in el) el.value = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const money = (cents) =>
  new Intl.NumberFormat('en-IE', { style: 'currency', currency: 'EUR' }).format((cents || 0) / 100);

export const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '');

export const label = (status) => String(status || '').replaceAll('_', ' ').toLowerCase();

/**
 * Renders an ApiProblem (or any error) as a readable block: its title, the
 * detail, each invalid field, the unavailable service, and the trace id to
 * find the logs by.
 */
export function problemBlock(error) {
  const p = error || {};
  return h('div', { class: 'problem-body', 'data-status': p.status ?? '' },
    h('strong', {}, p.title || 'Something went wrong'),
    p.status ? h('span', { class: 'code' }, ` (${p.status})`) : null,
    p.detail && p.detail !== p.title ? h('p', {}, p.detail) : null,
    p.errors && p.errors.length
      ? h('ul', {}, p.errors.map((e) => h('li', {}, h('code', {}, e.field), `: ${e.message}`)))
      : null,
    p.service ? h('p', { class: 'muted' }, `Service: ${p.service}`) : null,
    p.traceId ? h('p', { class: 'muted small' }, `Trace id: ${p.traceId}`) : null,
  );
}

/** Shows a problem in the page-wide alert; `null` hides it. */
export function showProblem(error) {
  const box = document.getElementById('problem');
  if (!error) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  mount(box, problemBlock(error), h('button', { class: 'link', type: 'button', onclick: () => showProblem(null) }, 'Dismiss'));
  box.hidden = false;
}

/** Runs an action for a button: disables it meanwhile, shows any problem. */
export async function act(button, action) {
  if (button) button.disabled = true;
  try {
    showProblem(null);
    return await action();
  } catch (e) {
    if (e && e.name === 'AbortError') return undefined;
    showProblem(e);
    return undefined;
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}

/** A labelled form field (label bound to the input for screen readers). */
let fieldIds = 0;
export function field(text, input) {
  const id = input.id || `f${++fieldIds}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, text), input);
}

/** A form's submit handler: no page load, the action run as by `act`. */
export function onSubmit(action) {
  return (e) => {
    e.preventDefault();
    act(e.submitter, action);
  };
}
