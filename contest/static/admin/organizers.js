// Organizer accounts of the units (/admin/organizers/): import a spreadsheet, find, disable or
// enable; the latest sign-ins.  An admin of a unit below the root sees only its subtree (the API
// scopes every call).  Sign-in as on the other staff pages: SMS code or a pasted token.
import { addMessages, t } from '/static/common/i18n.js';
import { h, fill, toast, toastError, errorText, fmtDateTime, debounce } from '/static/common/util.js';
import { startStaffPage } from '/static/common/staff.js';

addMessages({
  zh: {
    'og.title': '组织者账号', 'og.backAdmin': '管理后台', 'og.import': '导入组织者',
    'og.importHint': 'Excel 或 CSV；列：手机号、姓名、单位编号、角色（组织者/管理员，可空）；中文或英文表头；有一行出错则全部不导入。',
    'og.list': '组织者', 'og.searchPh': '按姓名或手机号查找', 'og.org': '单位', 'og.role': '角色', 'og.state': '状态',
    'og.organizer': '组织者', 'og.admin': '管理员', 'og.active': '正常', 'og.disabled': '已停用',
    'og.disable': '停用', 'og.enable': '启用', 'og.total': '共 {n} 人', 'og.imported': '新增 {imported} 人，更新 {updated} 人',
    'og.audit': '登录与操作记录', 'og.confirmDisable': '停用 {name}？其登录将在一分钟内失效。',
    'og.ev.login': '登录', 'og.ev.login_failed': '验证码错误', 'og.ev.login_refused': '停用账号尝试登录',
    'og.ev.disabled': '停用', 'og.ev.enabled': '启用', 'og.ev.import': '导入',
    'og.row': '第 {row} 行',
  },
  en: {
    'og.title': 'Organizer accounts', 'og.backAdmin': 'Admin', 'og.import': 'Import organizers',
    'og.importHint': 'Excel or CSV: phone, name, org_id, role (organizer/admin, optional); all or nothing.',
    'og.list': 'Organizers', 'og.searchPh': 'Find by name or phone', 'og.org': 'Unit', 'og.role': 'Role',
    'og.state': 'State', 'og.organizer': 'Organizer', 'og.admin': 'Admin', 'og.active': 'Active',
    'og.disabled': 'Disabled', 'og.disable': 'Disable', 'og.enable': 'Enable', 'og.total': '{n} accounts',
    'og.imported': '{imported} new, {updated} updated', 'og.audit': 'Sign-ins and changes',
    'og.confirmDisable': 'Disable {name}? Their sign-in stops working within a minute.',
    'og.ev.login': 'sign-in', 'og.ev.login_failed': 'wrong code', 'og.ev.login_refused': 'disabled account',
    'og.ev.disabled': 'disabled', 'og.ev.enabled': 'enabled', 'og.ev.import': 'import', 'og.row': 'row {row}',
  },
});

startStaffPage({
  onReady(api) {
    const rows = document.getElementById('og-rows');
    const total = document.getElementById('og-total');
    const q = document.getElementById('og-q');

    async function load() {
      try {
        const r = await api.get('/api/v1/admin/organizers', { q: q.value.trim(), limit: 1000 });
        total.textContent = t('og.total', { n: r.total });
        fill(rows, r.organizers.map((o) => h('tr', { testid: 'organizer-row', dataset: { staffId: o.staff_id } },
          h('td', o.phone), h('td', o.name), h('td', o.org_name || o.org_id), h('td', t('og.' + o.role)),
          h('td', { testid: 'organizer-state' }, o.disabled ? t('og.disabled') : t('og.active')),
          h('td', h('button.btn.small' + (o.disabled ? '' : '.secondary'), {
            type: 'button', testid: 'organizer-toggle',
            onclick: () => toggle(o),
          }, o.disabled ? t('og.enable') : t('og.disable'))))));
      } catch (err) { toastError(err); }
      loadAudit();
    }

    async function toggle(o) {
      if (!o.disabled && !window.confirm(t('og.confirmDisable', { name: o.name }))) return;
      try {
        await api.patch(`/api/v1/admin/organizers/${encodeURIComponent(o.staff_id)}`, { disabled: !o.disabled });
        await load();
      } catch (err) { toastError(err); }
    }

    async function loadAudit() {
      try {
        const r = await api.get('/api/v1/admin/organizers/audit', { limit: 20 });
        fill(document.getElementById('og-audit'), r.entries.map((e) => h('tr',
          h('td', fmtDateTime(Number(e.at))), h('td', t('og.ev.' + e.event)),
          h('td', e.phone || ''), h('td', e.ip || e.by || ''))));
      } catch (_) { /* the list matters more */ }
    }

    const form = document.getElementById('og-import');
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const file = document.getElementById('og-file').files[0];
      if (!file) return;
      const data = new FormData();
      data.append('file', file, file.name);
      const out = document.getElementById('og-result');
      try {
        const r = await api.request('POST', '/api/v1/admin/organizers/import', { form: data, retries: 0 });
        fill(out, h('p.ok-text', { testid: 'organizers-imported' }, t('og.imported', r)));
        toast(t('og.imported', r), 'ok');
        await load();
      } catch (err) {
        const errors = (err.details && err.details.errors) || [];
        const table = errors.length ? h('div.table-wrap', h('table', { testid: 'organizers-errors' },
          h('tbody', errors.map((x) => h('tr', h('td', t('og.row', { row: x.row })),
            h('td', x.column_label || x.column), h('td', x.message)))))) : null;
        fill(out, h('p.error-text', errorText(err)), table);
      }
    });
    q.addEventListener('input', debounce(load, 250));
    load();
  },
});
