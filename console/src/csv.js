// csv.js — turning result rows into CSV (RFC 4180 quoting) and JSON for export, and the column list of rows.

/**
 * The columns of rows in order of first appearance (NDJSON rows leave out null values).
 * @param {Array<Record<string, unknown>>} rows
 * @returns {string[]}
 */
export function columnsOf(rows) {
  /** @type {Set<string>} */
  const seen = new Set();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  return [...seen];
}

/**
 * The text of one value: null and undefined are empty, objects and lists are JSON.
 * @param {unknown} value
 */
export function cellText(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * One CSV field, quoted when it holds a comma, a quote, a line break or outer spaces.
 * @param {unknown} value
 */
export function csvField(value) {
  const text = cellText(value);
  if (/[",\r\n]/.test(text) || /^\s|\s$/.test(text)) return `"${text.replaceAll('"', '""')}"`;
  return text;
}

/**
 * Rows as CSV text: a header line and one line per row, lines ended by CRLF.
 * @param {Array<Record<string, unknown>>} rows
 * @param {string[]} [columns]
 */
export function toCsv(rows, columns = columnsOf(rows)) {
  const lines = [columns.map(csvField).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(row[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

/**
 * Rows as pretty JSON (an array of objects).
 * @param {Array<Record<string, unknown>>} rows
 */
export function toJson(rows) {
  return JSON.stringify(rows, null, 2) + '\n';
}
