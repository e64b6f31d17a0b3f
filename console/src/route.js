// route.js — reading and writing the hash routes (#/alerts/<id>?range=7d&level=high).
// The hash holds the view and its filters so a view can be bookmarked; never a token.

/**
 * @param {string} hash location.hash, e.g. "#/alerts?range=7d"
 * @returns {{path: string[], query: URLSearchParams}}
 */
export function parseHash(hash) {
  const text = hash.startsWith('#') ? hash.slice(1) : hash;
  const q = text.indexOf('?');
  const pathText = q >= 0 ? text.slice(0, q) : text;
  const query = new URLSearchParams(q >= 0 ? text.slice(q + 1) : '');
  const path = pathText
    .split('/')
    .filter((s) => s !== '')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { path, query };
}

/**
 * Builds a hash from path segments and query values; empty values are left out.
 * @param {string[]} path
 * @param {Record<string, string | null | undefined> | URLSearchParams} [params]
 */
export function buildHash(path, params) {
  const query = new URLSearchParams();
  if (params instanceof URLSearchParams) {
    params.forEach((v, k) => {
      if (v !== '') query.append(k, v);
    });
  } else if (params) {
    for (const [k, v] of Object.entries(params)) {
      if (v !== null && v !== undefined && v !== '') query.set(k, v);
    }
  }
  const qs = query.toString();
  return '#/' + path.map((s) => encodeURIComponent(s)).join('/') + (qs ? '?' + qs : '');
}

/**
 * The hash query of a link from an alert to an entity's page: a range (e.g. from rangeToQuery),
 * and the alert's tenant, so that the page shows that tenant's events and alerts only.
 * @param {Record<string, string | null | undefined>} rangeQuery
 * @param {unknown} tenant
 * @returns {Record<string, string | null | undefined>}
 */
export function entityLinkQuery(rangeQuery, tenant) {
  return { ...rangeQuery, tenant: typeof tenant === 'string' && tenant ? tenant : null };
}
