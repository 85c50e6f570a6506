// Question editor: add, change and delete questions with the import's checks.  A question already
// drawn into an attempt is never changed under it: the server saves a new version and retires
// the served one (shown with a badge), and a delete retires it instead.
import { t } from '/static/common/i18n.js';
import { h, fill, toast, toastError } from '/static/common/util.js';

const TYPES = ['single', 'multiple', 'judge'];

/** Opens the editor in `box` for `q` (null: a new question); `onSaved` reloads the bank. */
export function openEditor(api, box, q, onSaved) {
  box.hidden = false;
  const field = (name, input, label) => h('div', h('label', { for: 'qe-' + name }, label || t('admin.' + name)), input);
  const type = h('select', { id: 'qe-type', testid: 'qe-type' }, TYPES.map((x) => h('option', { value: x }, t('qtype.' + x))));
  type.value = q ? q.type : 'single';
  const stem = h('textarea', { id: 'qe-stem', testid: 'qe-stem', rows: 3 }, q ? q.stem : '');
  const options = h('textarea', { id: 'qe-options', testid: 'qe-options', rows: 5 }, q ? (q.options || []).join('\n') : '');
  const answer = h('input', { id: 'qe-answer', testid: 'qe-answer', type: 'text', value: q ? q.answer : '', placeholder: t('ed.answerHint') });
  const category = h('input', { id: 'qe-category', testid: 'qe-category', type: 'text', value: q ? (q.category != null ? q.category : '') : '' });
  const difficulty = h('select', { id: 'qe-difficulty' }, h('option', { value: '' }, '—'), [1, 2, 3, 4, 5].map((d) => h('option', { value: d }, String(d))));
  difficulty.value = q && q.difficulty ? String(q.difficulty) : '';
  const points = h('input', { id: 'qe-points', type: 'number', min: 1, step: 1, value: q ? q.points : 10 });
  const explanation = h('textarea', { id: 'qe-explanation', testid: 'qe-explanation', rows: 2 }, q ? q.explanation || '' : '');
  const save = h('button.btn', { type: 'submit', testid: 'qe-save' }, t('common.save'));
  const form = h('form.card', { testid: 'question-editor', novalidate: true },
    h('h2', q ? `${t('ed.title')}：${q.id}` : t('ed.titleNew')),
    q && q.retired ? h('p.check-bad.small', t('ed.retired')) : null,
    h('div.form-grid', field('type', type), field('category', category), field('difficulty', difficulty), field('points', points)),
    field('stem', stem),
    field('options', options, t('ed.options')),
    field('answer', answer),
    field('explanation', explanation),
    h('div.row', save, h('button.btn.secondary', { type: 'button', onclick: () => { box.hidden = true; } }, t('common.cancel'))));
  form.onsubmit = async (e) => {
    e.preventDefault();
    // stems and options are sent exactly as typed (the server keeps them as written, NFC only)
    const body = {
      type: type.value, stem: stem.value, answer: answer.value.trim(),
      options: options.value.split('\n').map((s) => s.trim()).filter((s) => s !== ''),
      category: category.value.trim() || null, difficulty: difficulty.value ? Number(difficulty.value) : null,
      points: Number(points.value) || 10, explanation: explanation.value,
    };
    if (type.value === 'judge' && !body.options.length) delete body.options;
    save.disabled = true;
    try {
      const r = q
        ? await api.put(`/api/v1/admin/questions/${encodeURIComponent(q.id)}`, body)
        : await api.post('/api/v1/admin/questions', body);
      toast(r.versioned ? t('ed.savedRetired', { id: r.question.id }) : t('ed.saved', { v: r.question.version }), 'ok', 5000);
      box.hidden = true;
      onSaved();
    } catch (err) { toastError(err); } finally { save.disabled = false; }
  };
  fill(box, form);
  box.scrollIntoView({ block: 'start' });
  stem.focus();
}

export async function deleteQuestion(api, q, onDone) {
  if (!window.confirm(t('ed.confirmDelete'))) return;
  try {
    const r = await api.del(`/api/v1/admin/questions/${encodeURIComponent(q.id)}`);
    toast(r.result === 'retired' ? t('ed.retired') : t('ed.deleted'), 'ok', 5000);
    onDone();
  } catch (err) { toastError(err); }
}
