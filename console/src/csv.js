// csv.js — turning result rows into CSV (RFC 4180 quoting, spreadsheet formulas neutralized, a
// UTF-8 byte order mark for spreadsheets) and JSON for export, and the column list of rows.

/** The byte order mark a CSV file starts with, so that spreadsheets read it as UTF-8. */
export const CSV_BOM = '\uFEFF';

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
 * Text a spreadsheet would run as a formula (it starts with "=", "+", "-", an at sign, a tab or a
 * carriage return) gets a leading "'" so that it is shown as text. Numbers are left alone
 * (-5 is data).
 * @param {unknown} value
 * @param {string} text the value's cell text
 */
export function neutralizeFormula(value, text) {
  if (typeof value === 'number' || typeof value === 'bigint') return text;
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

/**
 * One CSV field, formulas neutralized, quoted when it holds a comma, a quote, a line break or outer spaces.
 * @param {unknown} value
 */
export function csvField(value) {
  const text = neutralizeFormula(value, cellText(value));
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
 * A CSV file of rows: the byte order mark, then the CSV text.
 * @param {Array<Record<string, unknown>>} rows
 * @param {string[]} [columns]
 */
export function toCsvFile(rows, columns = columnsOf(rows)) {
  return CSV_BOM + toCsv(rows, columns);
}

/**
 * Rows as pretty JSON (an array of objects).
 * @param {Array<Record<string, unknown>>} rows
 */
export function toJson(rows) {
  return JSON.stringify(rows, null, 2) + '\n';
}
