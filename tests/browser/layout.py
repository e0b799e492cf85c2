"""Layout checks measured in the browser: nothing wider than the window,
nothing a user can click outside it, no two labels drawn over each other.

Used by tests/browser/test_small_screens.py; each check returns a list of
readable problems (empty: fine) so a failure says what broke where."""
from __future__ import annotations

INTERACTIVE = "a[href], button, input:not([type=hidden]), select, textarea, [role=button], [tabindex]:not([tabindex='-1'])"

# Labels and values a reader must be able to read on every page.
LABELS = (
    ".topbar .brand, .topbar .nav a, .topbar .user-name, .topbar .role, .topbar .logout, "
    ".status-label, .call-timer, .status-detail, "
    ".pop-state, .pop-caller-number, .pop-caller-name, .pop-summary, .pop-queue, .pop-transferred-from, .pop-close, .pop-header .badge, "
    "h1, h2, h3, h4, label, dt, dd, th, td, .badge, button, .button"
)

_JS = """([interactive, labels]) => {
  const problems = [];
  const W = window.innerWidth;
  const doc = document.documentElement;
  if (doc.scrollWidth > W) problems.push(`page is ${doc.scrollWidth}px wide in a ${W}px window`);
  if (W !== window.outerWidth && window.outerWidth > 0 && W > window.outerWidth) problems.push(`layout viewport ${W}px wider than the window ${window.outerWidth}px`);
  const name = (e) => {
    const id = e.id ? '#' + e.id : '';
    const cls = typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\\s+/).join('.') : '';
    const txt = (e.textContent || e.value || '').trim().slice(0, 30);
    return `${e.tagName.toLowerCase()}${id}${cls} "${txt}"`;
  };
  const visible = (e) => {
    if (!e.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) return false;
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  for (const e of document.querySelectorAll(interactive)) {
    if (!visible(e)) continue;
    const r = e.getBoundingClientRect();
    if (r.left < -0.5 || r.right > W + 0.5) problems.push(`${name(e)} is off-screen (x ${Math.round(r.left)}..${Math.round(r.right)} of ${W})`);
  }
  // What of a box shows: cut by every ancestor (and itself) that hides its
  // overflow (a name clamped to one line, an ellipsis).
  const clipped = (e, r) => {
    let left = r.left, right = r.right, top = r.top, bottom = r.bottom;
    for (let n = e; n && n !== document.body; n = n.parentElement) {
      const s = getComputedStyle(n);
      if (s.overflowX === 'visible' && s.overflowY === 'visible') continue;
      const c = n.getBoundingClientRect();
      left = Math.max(left, c.left); right = Math.min(right, c.right);
      top = Math.max(top, c.top); bottom = Math.min(bottom, c.bottom);
    }
    return { left, right, top, bottom, width: Math.max(0, right - left), height: Math.max(0, bottom - top) };
  };
  // The box of the text an element shows: each text node's box, cut by
  // its own clipping ancestors, put together.
  const textBox = (e) => {
    const walker = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
    let box = null;
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      if (!t.textContent.trim() || !t.parentElement.checkVisibility({ checkVisibilityCSS: true })) continue;
      const range = document.createRange();
      range.selectNodeContents(t);
      const r = clipped(t.parentElement, range.getBoundingClientRect());
      if (r.width <= 0 || r.height <= 0) continue;
      box = box ? { left: Math.min(box.left, r.left), right: Math.max(box.right, r.right), top: Math.min(box.top, r.top), bottom: Math.max(box.bottom, r.bottom) } : r;
    }
    if (!box) return { left: 0, right: 0, top: 0, bottom: 0, width: 0, height: 0 };
    return { ...box, width: box.right - box.left, height: box.bottom - box.top };
  };
  // Labels: the box of the text itself (a Range), so a wide block around a
  // short word does not count as overlapping its neighbour.
  const boxes = [];
  for (const e of document.querySelectorAll(labels)) {
    if (!visible(e) || !(e.textContent || '').trim()) continue;
    const r = textBox(e);
    if (r.width > 0 && r.height > 0) boxes.push([e, r]);
    if (r.left < -0.5 || r.right > W + 0.5) problems.push(`${name(e)} is cut off (x ${Math.round(r.left)}..${Math.round(r.right)} of ${W})`);
  }
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const [a, ra] = boxes[i];
      const [b, rb] = boxes[j];
      if (a.contains(b) || b.contains(a)) continue;
      const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (w > 1 && h > 1) problems.push(`${name(a)} overlaps ${name(b)} (${Math.round(w)}x${Math.round(h)} px)`);
    }
  }
  return problems;
}"""


async def layout_problems(page) -> list[str]:
    """Everything wrong with the page's layout as it is drawn now."""
    return await page.evaluate(_JS, [INTERACTIVE, LABELS])
