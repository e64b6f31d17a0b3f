// matching.js — which fields of an event a detection matched: compares the keys of an alert's
// `matched` map with an event's columns and original fields, case-insensitively, across the
// ECS names of the schema and the original Windows field names (CommandLine ↔ process.command_line).

/** Normalized ECS column ↔ normalized original field names that carry the same value. */
const ALIASES = /** @type {Record<string, string[]>} */ ({
  processcommandline: ['commandline'],
  processexecutable: ['image'],
  processparentexecutable: ['parentimage'],
  processparentcommandline: ['parentcommandline'],
  processpid: ['processid'],
  processparentpid: ['parentprocessid'],
  processoriginalfilename: ['originalfilename'],
  hostname: ['computer', 'computername', 'hostname'],
  username: ['user', 'targetusername', 'username'],
  eventcode: ['eventid'],
  sourceip: ['sourceip', 'ipaddress'],
  sourceport: ['sourceport', 'ipport'],
  destinationip: ['destinationip'],
  destinationport: ['destinationport'],
  filepath: ['targetfilename'],
  registrypath: ['targetobject'],
  dnsquestionname: ['queryname'],
  servicename: ['servicename'],
});

/** @param {string} key */
export function normalizeKey(key) {
  return key.split('|')[0].toLowerCase().replace(/[^a-z0-9]/g, '');
}

/**
 * Whether two field names name the same field.
 * @param {string} a
 * @param {string} b
 */
export function sameField(a, b) {
  const na = normalizeKey(a);
  const nb = normalizeKey(b);
  if (!na || !nb) return false;
  if (na === nb) return true;
  if (ALIASES[na]?.includes(nb) || ALIASES[nb]?.includes(na)) return true;
  // An ECS name against an original name: compare the last part ("process.command_line" ~ "CommandLine").
  const dotted = (/** @type {string} */ k) => k.split('|')[0].includes('.');
  const tail = (/** @type {string} */ k) => normalizeKey(k.split('|')[0].split('.').pop() ?? '');
  if (dotted(a) && !dotted(b)) return nb.length >= 6 && tail(a) === nb;
  if (dotted(b) && !dotted(a)) return na.length >= 6 && tail(b) === na;
  return false;
}

/** @param {unknown} v */
function valueKey(v) {
  if (v === null || v === undefined) return '';
  return (typeof v === 'object' ? JSON.stringify(v) : String(v)).trim().toLowerCase();
}

/**
 * A test of whether an event entry is one of the matched fields: by its name (see sameField),
 * or by its value when that equals a matched value of at least 4 characters (the same data under
 * a name this table does not know).
 * @param {Record<string, unknown> | null | undefined} matched
 * @returns {(key: string, value?: unknown) => boolean}
 */
export function matcher(matched) {
  const keys = Object.keys(matched ?? {});
  const values = new Set(Object.values(matched ?? {}).map(valueKey).filter((v) => v.length >= 4));
  return (key, value) => keys.some((m) => sameField(key, m)) || (value !== undefined && values.has(valueKey(value)));
}

/** @typedef {{key: string, value: unknown, source: 'column' | 'field', hit: boolean}} EventEntry */

/**
 * An event's columns and original fields as entries, the matched ones first (each part in its
 * order). Null values are left out.
 * @param {Record<string, unknown>} event
 * @param {(key: string, value?: unknown) => boolean} isMatched
 * @returns {EventEntry[]}
 */
export function eventEntries(event, isMatched) {
  /** @type {EventEntry[]} */
  const entries = [];
  for (const [key, value] of Object.entries(event)) {
    if (key === 'fields' || value === null || value === undefined) continue;
    entries.push({ key, value, source: 'column', hit: isMatched(key, value) });
  }
  const fields = event.fields;
  if (fields && typeof fields === 'object' && !Array.isArray(fields)) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === null || value === undefined) continue;
      entries.push({ key, value, source: 'field', hit: isMatched(key, value) });
    }
  }
  return [...entries.filter((e) => e.hit), ...entries.filter((e) => !e.hit)];
}
