// Formatting of money, times and durations for people, in the browser's
// locale and time zone.  Every function accepts junk (null, '', 'abc') and
// returns something printable rather than throwing: one odd value from one
// business system must never break a pop.

const moneyFormats = new Map();

// Amounts arrive as numbers or decimal strings ("1234.50"); currency is an
// ISO 4217 code.  An unknown code falls back to "1234.50 XYZ".
export function money(amount, currency) {
  if (amount === null || amount === undefined || amount === '') return '';
  const n = typeof amount === 'number' ? amount : Number(String(amount).trim());
  if (!Number.isFinite(n)) return `${amount}${currency ? ' ' + currency : ''}`;
  if (!currency) return number(n, 2);
  const key = String(currency);
  try {
    if (!moneyFormats.has(key)) {
      moneyFormats.set(key, new Intl.NumberFormat(undefined, { style: 'currency', currency: key }));
    }
    return moneyFormats.get(key).format(n);
  } catch {
    return `${number(n, 2)} ${key}`;
  }
}

export function number(n, digits = 0) {
  const v = Number(n);
  if (!Number.isFinite(v)) return String(n ?? '');
  return v.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function amountValue(amount) {
  const n = typeof amount === 'number' ? amount : Number(String(amount ?? '').trim());
  return Number.isFinite(n) ? n : 0;
}

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function parseTime(value) {
  if (value === null || value === undefined || value === '') return null;
  const t = Date.parse(String(value));
  return Number.isFinite(t) ? new Date(t) : null;
}

// "23 Nov 2025, 09:05"; a value that is not a date is shown as it came.
export function dateTime(value) {
  const d = parseTime(value);
  return d ? dateTimeFormat.format(d) : String(value ?? '');
}

const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

// "14:51:13": a moment of today, to the second (the PBX link's banner).
export function clockTime(value) {
  const d = value instanceof Date ? value : parseTime(value);
  return d ? clockFormat.format(d) : String(value ?? '');
}

// Date-only values ("2025-11-30") are calendar days, not instants: format
// them in UTC so a browser west of Greenwich does not show the day before.
export function date(value) {
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const d = new Date(value + 'T00:00:00Z');
    return Number.isFinite(d.getTime())
      ? new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' }).format(d)
      : value;
  }
  const d = parseTime(value);
  return d ? dateFormat.format(d) : String(value ?? '');
}

// 75 -> "1:15", 3725 -> "1:02:05": the call timer and talk/wait times.
export function duration(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

// Server-rendered pages print timestamps as ISO text inside
// <time datetime="…">; this rewrites them in the reader's time zone.
export function localizeTimes(root = document) {
  for (const node of root.querySelectorAll('time[datetime]')) {
    const raw = node.getAttribute('datetime');
    if (!raw) continue;
    node.textContent = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? date(raw) : dateTime(raw);
    node.title = raw;
  }
}
