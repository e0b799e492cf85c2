// DOM building without HTML strings.
//
// Every piece of call or customer data that reaches the page goes through
// el()/text(): nodes are made with createElement and filled with
// textContent, so a caller named '<img src=x onerror=…>' is shown as those
// characters and never parsed.  There is deliberately no helper that takes
// markup.

// el('li', {class: 'order', title: full}, child, 'text', …)
// attrs: 'class' -> className, 'dataset' -> data-*, on* functions -> listeners,
// true -> boolean attribute, null/undefined/false -> omitted, else setAttribute.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, ...children);
  return node;
}

// Children may be nodes, strings/numbers (become text nodes), arrays, or
// null/undefined/false (skipped) so callers can write `cond && el(…)`.
export function append(parent, ...children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, ...child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
  return parent;
}

// A span holding one data value.  dir="auto" plus the .v class (CSS
// unicode-bidi: isolate) keep a right-to-left override inside a customer's
// name from reversing the text around it.
export function text(value, cls = '', tag = 'span') {
  const node = document.createElement(tag);
  node.className = cls ? `v ${cls}` : 'v';
  node.dir = 'auto';
  node.textContent = value === null || value === undefined ? '' : String(value);
  return node;
}

// A data value that may be huge (10 KB names happen): clamped by CSS, the
// full value kept in the tooltip.
export function longText(value, cls = '', tag = 'span') {
  const node = text(value, cls ? `clamp ${cls}` : 'clamp', tag);
  node.title = node.textContent.slice(0, 2000);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function byId(id) {
  return document.getElementById(id);
}

// Plain value for display: objects become compact JSON, long text is cut.
export function plain(value, max = 300) {
  if (value === null || value === undefined) return '';
  let out = typeof value === 'object' ? safeJSON(value) : String(value);
  if (out.length > max) out = out.slice(0, max - 1) + '…';
  return out;
}

function safeJSON(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
