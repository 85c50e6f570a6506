// The registration org picker, made for a province of ~130,000 units on a phone.
// Two ways to the same choice: a search box (name or pinyin initials, GET /api/v1/orgs?q=, at
// most 20 results) and a cascade of selects, one level at a time (province > city > county >
// town > village, GET /api/v1/orgs?parent_id=). Only the lists a person opens are downloaded.
import { t } from '/static/common/i18n.js';
import { h, fill, debounce, errorText } from '/static/common/util.js';

const ORGS = '/api/v1/orgs';
const lists = new Map(); // parent org_id ('' for the roots) -> Promise of its children

function childrenOf(api, parentId) {
  const key = parentId || '';
  let p = lists.get(key);
  if (!p) {
    p = api.get(ORGS, key ? { parent_id: key } : {}, { auth: false, retries: 2 }).then((r) => r.orgs || []);
    p.catch(() => lists.delete(key)); // a failed list is asked again next time
    lists.set(key, p);
  }
  return p;
}

function levelName(level) {
  const key = 'org.level' + level;
  const s = t(key);
  return s === key ? t('org.levelN', { n: level }) : s;
}

/**
 * The picker element. `state.path` is the chosen chain, root first: [{org_id, name, level,
 * has_children}]; it survives re-rendering (language switch). `onChange(state.path)` after each choice.
 * The element carries data-testid="register-org" and data-org-id (the chosen unit).
 */
export function orgPicker(api, state, onChange = () => {}) {
  state.path = state.path || [];
  const box = h('div.org-picker', { testid: 'register-org', role: 'group', 'aria-labelledby': 'org-picker-label' });
  const search = h('input#org-search', {
    type: 'search', testid: 'org-search', autocomplete: 'off', enterkeyhint: 'search',
    placeholder: t('org.searchPh'), 'aria-controls': 'org-results', value: state.q || '',
  });
  const results = h('ul.org-results#org-results', { testid: 'org-results', hidden: true, 'aria-live': 'polite' });
  const cascade = h('div.org-cascade', { testid: 'org-cascade' });
  const chosen = h('div.org-chosen', { testid: 'org-path', 'aria-live': 'polite' });
  let drawn = 0; // the latest cascade drawing; older ones stop when they see a newer one
  let asked = 0; // the latest search; older answers are dropped

  function pick(path) {
    state.path = path;
    drawChosen();
    drawCascade();
    onChange(path);
  }

  function drawChosen() {
    const last = state.path[state.path.length - 1];
    box.dataset.orgId = last ? last.org_id : '';
    if (!last) { fill(chosen, h('span.muted', t('org.none'))); return; }
    fill(chosen,
      h('span.org-chosen-label', t('org.chosen')),
      h('b', state.path.map((o) => o.name).join(' / ')),
      last.has_children ? h('div.org-more', t('org.goDeeper', { level: levelName(last.level + 1) })) : null);
  }

  async function drawCascade() {
    const mine = ++drawn;
    const path = state.path;
    const rows = [];
    // one select per level: the roots, then the children of each chosen unit that has some
    for (let i = 0; i <= path.length; i++) {
      if (i > 0 && !path[i - 1].has_children) break;
      const level = i ? path[i - 1].level + 1 : 1;
      const sel = h('select.org-level', {
        testid: 'org-level', dataset: { level }, 'aria-label': levelName(level), disabled: true,
      }, h('option', { value: '' }, t('common.loading')));
      rows.push(h('label.org-row', h('span.org-row-name', levelName(level)), sel));
    }
    fill(cascade, rows);
    // ask for every level's list at once (after a search pick, four lists), then fill them in order
    const pending = rows.map((_, i) => childrenOf(api, i ? path[i - 1].org_id : ''));
    for (let i = 0; i < rows.length; i++) {
      const sel = rows[i].querySelector('select');
      let orgs;
      try {
        orgs = await pending[i];
      } catch (err) {
        if (mine !== drawn) return;
        fill(sel, h('option', { value: '' }, t('org.loadFailed')));
        rows[i].append(h('button.btn.link.small', { type: 'button', onclick: drawCascade }, t('common.retry')));
        return;
      }
      if (mine !== drawn) return;
      if (i === 0 && !path.length && orgs.length === 1) { pick([orgs[0]]); return; } // one province: no need to ask
      const current = path[i] ? path[i].org_id : '';
      fill(sel,
        h('option', { value: '' }, t('org.choose', { level: levelName(i ? path[i - 1].level + 1 : 1) })),
        orgs.map((o) => h('option', { value: o.org_id, selected: o.org_id === current }, o.name)));
      sel.value = current;
      sel.disabled = false;
      sel.onchange = () => {
        const o = orgs.find((x) => x.org_id === sel.value);
        pick(o ? [...path.slice(0, i), o] : path.slice(0, i));
        if (o && o.has_children) {
          // move on to the next level's list once it is drawn
          setTimeout(() => { const next = cascade.querySelectorAll('select')[i + 1]; if (next) next.focus(); }, 0);
        }
      };
    }
  }

  async function runSearch() {
    const q = search.value.trim();
    state.q = search.value;
    const mine = ++asked;
    if (!q) { results.hidden = true; fill(results); return; }
    results.hidden = false;
    fill(results, h('li.muted', t('common.loading')));
    let found;
    try {
      found = (await api.get(ORGS, { q }, { auth: false, retries: 1 })).orgs || [];
    } catch (err) {
      if (mine === asked) fill(results, h('li.muted', errorText(err)));
      return;
    }
    if (mine !== asked) return;
    if (!found.length) { fill(results, h('li.muted', t('org.noMatch'))); return; }
    fill(results, found.map((o) => h('li', h('button.org-result', {
      type: 'button', testid: 'org-result', dataset: { orgId: o.org_id },
      onclick: () => {
        const names = o.path || [o.name];
        const ids = o.path_ids || [o.org_id];
        search.value = '';
        state.q = '';
        results.hidden = true;
        fill(results);
        pick(ids.map((id, k) => ({
          org_id: id, name: names[k], level: o.level - ids.length + 1 + k,
          has_children: k < ids.length - 1 ? true : o.has_children,
          accepts_members: k === ids.length - 1 && !!o.accepts_members,
        })));
      },
    }, h('span.org-result-name', o.name),
    h('small', (o.path || []).slice(0, -1).join(' / ') || levelName(o.level))))));
  }
  search.addEventListener('input', debounce(runSearch, 250));
  search.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); runSearch(); } });

  box.append(
    h('label', { for: 'org-search' }, t('org.search')), search,
    h('p.muted.small.org-tip', t('org.searchTip')), results,
    h('div.org-or', t('org.orStep')), cascade, chosen);
  drawChosen();
  drawCascade();
  if (state.q) runSearch();
  return box;
}
