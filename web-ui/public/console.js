// Progressive enhancement only: every page works without this file.
'use strict';

// A filter <select data-autosubmit> applies on change; without JS the form's Apply button does it.
for (const select of document.querySelectorAll('select[data-autosubmit]')) {
  select.addEventListener('change', () => select.form && select.form.requestSubmit());
}

// "/" focuses the field marked data-hotkey="/" (as on GitHub and Grafana), unless the user is typing.
document.addEventListener('keydown', (event) => {
  if (event.key !== '/' || event.ctrlKey || event.metaKey || event.altKey) return;
  const active = document.activeElement;
  if (active && (active.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName))) return;
  const target = document.querySelector('[data-hotkey="/"]');
  if (!target) return;
  event.preventDefault();
  target.focus();
  target.select();
});
