// pages/rules.js — the rule set (#/rules): every rule with its status, level, hits and last hit
// over the last 24 h, filters, totals, the conformance figure and the last refused change; a rule's
// source on click; for admins, editing and creating rule files (PUT /v1/rules/<path>).

import { ApiError, errorMessage, getJson, isAbort, request, runQuery } from '../api.js';
import { emptyState, errorState, fill, h, levelBadge, loadingState, openDialog, timeEl, toast, valueText } from '../dom.js';
import { sqlTime } from '../time.js';

export const title = 'Rules';

const DAY = 86_400_000;

/** @typedef {import('../types.js').Rule} Rule */
/** @typedef {import('../types.js').RulesResponse} RulesResponse */

/**
 * The SQL of hits per rule since `from`.
 * @param {number} from
 */
export function hitsSql(from) {
  return `SELECT "rule.id" AS rule, count(*) AS hits, max("@timestamp") AS last FROM alerts WHERE "@timestamp" >= ${sqlTime(from)} GROUP BY "rule.id"`;
}

/**
 * Why a rule path cannot be saved, or null when it can: relative, no "..", ends .yml/.yaml.
 * @param {string} path
 */
export function rulePathProblem(path) {
  const p = path.trim();
  if (!p) return 'Enter a path, e.g. local/my-rule.yml.';
  if (p.startsWith('/') || p.includes('\\') || /^[a-z]:/i.test(p)) return 'The path must be relative to the rules folder.';
  if (p.split('/').some((seg) => seg === '..' || seg === '.' || seg === '')) return 'The path must not hold empty, "." or ".." parts.';
  if (!/\.ya?ml$/i.test(p)) return 'The path must end in .yml or .yaml.';
  return null;
}

/**
 * @param {HTMLElement} root
 * @param {import('../types.js').PageContext} ctx
 */
export function render(root, ctx) {
  const isAdmin = ctx.session.role === 'admin';
  /** @type {RulesResponse | null} */
  let data = null;
  /** @type {Map<string, {hits: number, last: unknown}>} */
  let hits = new Map();
  /** @type {string | null} */
  let hitsError = null;
  let filterText = ctx.query.get('q') ?? '';
  let statusFilter = ctx.query.get('status') ?? '';

  const overview = h('div', { class: 'grid-3' });
  const editorSlot = h('div');
  const tableBox = h('div', { class: 'results' });
  const body = h('div');

  const filterInput = h('input', { id: 'rules-filter', type: 'search', value: filterText, placeholder: 'title, id, file or tag', 'data-testid': 'rules-filter', 'data-first-filter': '' });
  filterInput.addEventListener('input', () => {
    filterText = filterInput.value;
    ctx.setQuery({ q: filterText || null, status: statusFilter || null });
    drawTable();
  });
  const statusSelect = h(
    'select',
    { id: 'rules-status', 'data-testid': 'rules-status' },
    [['', 'any'], ['loaded', 'loaded'], ['unsupported', 'unsupported']].map(([v, t]) => h('option', { value: v, selected: statusFilter === v }, t)),
  );
  statusSelect.addEventListener('change', () => {
    statusFilter = statusSelect.value;
    ctx.setQuery({ q: filterText || null, status: statusFilter || null });
    drawTable();
  });

  const load = async () => {
    fill(body, loadingState('Loading rules…'));
    try {
      const [rules, counted] = await Promise.all([
        getJson('/v1/rules', { signal: ctx.signal }),
        runQuery(hitsSql(Date.now() - DAY), { maxRows: 100_000, signal: ctx.signal }).catch((e) => (isAbort(e) ? Promise.reject(e) : e)),
      ]);
      if (ctx.signal.aborted) return;
      data = /** @type {RulesResponse} */ (rules);
      hits = new Map();
      hitsError = null;
      if (counted instanceof Error) hitsError = errorMessage(counted);
      else for (const row of counted.rows) hits.set(valueText(row.rule), { hits: Number(row.hits ?? 0), last: row.last });
      fill(body, overview, editorSlot, h('div', { class: 'toolbar' }, h('label', { for: 'rules-filter' }, 'Filter'), filterInput, h('label', { for: 'rules-status' }, 'Status'), statusSelect, isAdmin ? h('button', { type: 'button', 'data-testid': 'new-rule', onclick: () => openEditor(null, '') }, 'New rule') : null), tableBox);
      drawOverview();
      drawTable();
    } catch (e) {
      if (isAbort(e) || ctx.signal.aborted) return;
      fill(body, errorState(e, load, 'Loading rules failed'));
    }
  };

  const drawOverview = () => {
    if (!data) return;
    const rules = data.rules ?? [];
    const loaded = rules.filter((r) => r.status === 'loaded').length;
    const unsupported = rules.filter((r) => r.status !== 'loaded').length;
    const conf = data.conformance ?? null;
    const rej = data.last_rejection ?? null;
    fill(
      overview,
      h(
        'section',
        { class: 'card', 'data-testid': 'rule-totals' },
        h('h2', null, 'Rule set'),
        h('p', { class: 'big' }, h('span', { 'data-testid': 'loaded-count' }, `${loaded} loaded`), ' · ', h('span', { 'data-testid': 'unsupported-count' }, `${unsupported} unsupported`)),
        h('p', { class: 'muted' }, `Generation ${valueText(data.generation)}, loaded `, timeEl(data.loaded_at)),
      ),
      h(
        'section',
        { class: 'card', 'data-testid': 'conformance' },
        h('h2', null, 'Sigma conformance'),
        conf
          ? [
              h('p', { class: 'big' }, `${conf.passed} / ${conf.total} passed (${Number(conf.rate_percent).toFixed(1)} %)`),
              h('p', { class: 'muted' }, 'Corpus ', h('code', null, String(conf.corpus)), ', run ', timeEl(conf.at)),
            ]
          : h(
              'p',
              { class: 'muted' },
              'No conformance run recorded: run ',
              h('code', null, 'vedette rules check --conformance <corpus> --data-dir <data dir>'),
            ),
      ),
      h(
        'section',
        { class: 'card', 'data-testid': 'last-rejection' },
        h('h2', null, 'Last refused change'),
        rej
          ? [h('p', null, 'At ', timeEl(rej.at)), h('ul', { class: 'problems' }, Object.entries(rej.problems ?? {}).flatMap(([file, msgs]) => (Array.isArray(msgs) ? msgs : [msgs]).map((m) => h('li', null, h('code', null, file), ': ', String(m)))))]
          : h('p', { class: 'muted' }, 'No change was refused since the start.'),
      ),
    );
  };

  const drawTable = () => {
    if (!data) return;
    const needle = filterText.trim().toLowerCase();
    const rules = (data.rules ?? []).filter((r) => {
      if (statusFilter && (statusFilter === 'loaded' ? r.status !== 'loaded' : r.status === 'loaded')) return false;
      if (!needle) return true;
      return [r.title, r.id, r.file, ...(r.tags ?? [])].some((v) => String(v ?? '').toLowerCase().includes(needle));
    });
    if (!rules.length) {
      fill(tableBox, emptyState(data.rules?.length ? 'No rule matches the filter.' : 'No rules are loaded.'));
      return;
    }
    const columns = ['Status', 'Level', 'Title', 'Id', 'Kind', 'Hits (24 h)', 'Last hit', 'File', ...(isAdmin ? [''] : [])];
    fill(
      tableBox,
      h('p', { class: 'summary' }, `${rules.length} rule${rules.length === 1 ? '' : 's'}`, hitsError ? h('span', { class: 'form-error' }, ` · hits unavailable: ${hitsError}`) : ''),
      h(
        'div',
        { class: 'table-wrap tall' },
        h(
          'table',
          { class: 'data', 'data-testid': 'rules-table' },
          h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c)))),
          h(
            'tbody',
            null,
            rules.map((r) => {
              const hit = r.id ? hits.get(r.id) : undefined;
              const tr = h(
                'tr',
                { 'data-testid': 'rule-row', 'data-status': r.status, class: 'clickable' },
                h('td', null, h('span', { class: `badge rule-${r.status === 'loaded' ? 'loaded' : 'unsupported'}`, title: r.reason ?? null }, r.status), r.status !== 'loaded' && r.reason ? h('div', { class: 'reason small' }, r.reason) : null),
                h('td', null, r.level ? levelBadge(r.level) : ''),
                h('td', null, h('button', { type: 'button', class: 'link', 'data-testid': 'rule-open', onclick: () => showSource(r) }, r.title ?? r.file)),
                h('td', { class: 'mono small' }, r.id ?? ''),
                h('td', null, r.kind ?? ''),
                h('td', { class: 'num' }, String(hit?.hits ?? 0)),
                h('td', { class: 'nowrap' }, hit ? timeEl(hit.last) : '—'),
                h('td', { class: 'mono small file' }, r.file),
                isAdmin ? h('td', null, r.editable_path ? h('button', { type: 'button', class: 'small secondary', 'data-testid': 'rule-edit', onclick: () => editRule(r) }, 'Edit') : null) : null,
              );
              tr.addEventListener('click', (e) => {
                if (e.target instanceof Element && e.target.closest('button, a')) return;
                showSource(r);
              });
              return tr;
            }),
          ),
        ),
      ),
    );
  };

  /** @param {Rule} r */
  const fetchSource = async (r) => getJson(`/v1/rules/source?file=${encodeURIComponent(r.file)}`, { signal: ctx.signal });

  /** @param {Rule} r */
  const showSource = async (r) => {
    const box = h('div', { 'data-testid': 'rule-source-box' }, loadingState('Loading the source…'));
    const actions = [];
    /** @type {string | null} */
    let text = null;
    const editButton = isAdmin && r.editable_path ? h('button', { type: 'button', 'data-testid': 'rule-source-edit', disabled: true }, 'Edit') : null;
    if (editButton) actions.push(editButton);
    const dlg = openDialog({ title: r.title ?? r.file, body: [h('p', { class: 'muted mono small' }, r.file), box], actions, testid: 'rule-source-dialog', wide: true });
    try {
      const src = await fetchSource(r);
      text = String(src?.text ?? '');
      fill(box, h('pre', { class: 'code', 'data-testid': 'rule-source' }, text));
      if (editButton && r.editable_path) {
        const path = r.editable_path;
        editButton.disabled = false;
        editButton.addEventListener('click', () => {
          dlg.close();
          openEditor(path, text ?? '');
        });
      }
    } catch (e) {
      if (isAbort(e)) return;
      fill(box, errorState(e, null, 'Loading the source failed'));
    }
  };

  /** @param {Rule} r */
  const editRule = async (r) => {
    if (!r.editable_path) return;
    try {
      const src = await fetchSource(r);
      openEditor(r.editable_path, String(src?.text ?? ''));
    } catch (e) {
      if (!isAbort(e)) toast(`Loading the source failed: ${errorMessage(e)}`, 'error');
    }
  };

  /**
   * The editor of a rule file: an existing one (path fixed) or a new one.
   * @param {string | null} path
   * @param {string} text
   */
  const openEditor = (path, text) => {
    const pathInput = h('input', { id: 'rule-path', type: 'text', value: path ?? '', readOnly: path !== null, placeholder: 'local/my-rule.yml', 'data-testid': 'rule-path', spellcheck: 'false' });
    const yaml = h('textarea', { id: 'rule-yaml', class: 'code', rows: 18, spellcheck: 'false', 'data-testid': 'rule-yaml' });
    yaml.value = text;
    const problems = h('div', { 'data-testid': 'rule-problems', role: 'alert' });
    const result = h('div', { 'data-testid': 'rule-save-result', role: 'status' });
    const save = h('button', { type: 'button', 'data-testid': 'rule-save' }, 'Save and reload');
    save.addEventListener('click', async () => {
      fill(problems);
      fill(result);
      const p = pathInput.value.trim();
      const pathProblem = rulePathProblem(p);
      if (pathProblem) {
        fill(problems, h('p', { class: 'form-error' }, pathProblem));
        pathInput.focus();
        return;
      }
      save.disabled = true;
      save.textContent = 'Saving…';
      try {
        const res = await request(`/v1/rules/${p.split('/').map(encodeURIComponent).join('/')}`, { method: 'PUT', text: yaml.value, contentType: 'application/yaml', signal: ctx.signal });
        const answer = await res.json().catch(() => ({}));
        const changed = Array.isArray(answer?.changed) ? answer.changed.map(String) : [];
        fill(
          result,
          h(
            'p',
            { class: 'success' },
            `Saved. Rule set generation ${valueText(answer?.generation)}: ${valueText(answer?.loaded)} loaded, ${valueText(answer?.unsupported ?? 0)} unsupported.`,
            changed.length ? ` Changed: ${changed.join(', ')}.` : '',
          ),
        );
        toast(`Rule saved; generation ${valueText(answer?.generation)} is live.`);
        pathInput.readOnly = true;
        reloadTable();
      } catch (e) {
        if (isAbort(e)) return;
        if (e instanceof ApiError && e.status === 422) {
          const lines = e.problems;
          fill(problems, h('div', { class: 'state state-error' }, h('p', null, h('strong', null, 'The rule was refused: '), e.message), lines.length ? h('ul', { class: 'problems' }, lines.map((l) => h('li', null, l))) : null));
        } else if (e instanceof ApiError && e.status === 403) {
          fill(problems, h('p', { class: 'form-error' }, `Not allowed: ${e.message}`));
        } else {
          fill(problems, h('p', { class: 'form-error' }, `Saving failed: ${errorMessage(e)}`));
        }
      } finally {
        save.disabled = false;
        save.textContent = 'Save and reload';
      }
    });
    fill(
      editorSlot,
      h(
        'section',
        { class: 'card editor', 'data-testid': 'rule-editor' },
        h('h2', null, path ? `Edit ${path}` : 'New rule'),
        h('div', { class: 'field-row' }, h('label', { for: 'rule-path' }, 'Path under the data folder’s rules/'), pathInput),
        h('label', { for: 'rule-yaml' }, 'Sigma rule (YAML)'),
        yaml,
        h('div', { class: 'toolbar' }, save, h('button', { type: 'button', class: 'secondary', 'data-testid': 'rule-cancel', onclick: () => fill(editorSlot) }, 'Close')),
        problems,
        result,
      ),
    );
    (path ? yaml : pathInput).focus();
  };

  /** Reloads the rules and hits without closing the editor. */
  const reloadTable = async () => {
    try {
      const [rules, counted] = await Promise.all([getJson('/v1/rules', { signal: ctx.signal }), runQuery(hitsSql(Date.now() - DAY), { maxRows: 100_000, signal: ctx.signal }).catch(() => null)]);
      if (ctx.signal.aborted) return;
      data = rules;
      if (counted) {
        hits = new Map();
        for (const row of counted.rows) hits.set(valueText(row.rule), { hits: Number(row.hits ?? 0), last: row.last });
      }
      drawOverview();
      drawTable();
    } catch (e) {
      if (!isAbort(e)) toast(`Refreshing the rules failed: ${errorMessage(e)}`, 'error');
    }
  };

  fill(root, h('section', { class: 'page', 'data-testid': 'page-rules' }, h('div', { class: 'page-head' }, h('h1', null, 'Rules')), body));
  load();
}
