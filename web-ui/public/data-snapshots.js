// Live progress of data snapshots and restores (master/data-snapshots/pages.ts, /snapshots/data/progress).
// The server formats each line; this only places it. On a running snapshot's own page, its end reloads
// the page, which then shows the finished snapshot's facts.
(function () {
  'use strict';
  const panel = document.querySelector('[data-progress]');
  if (!panel || !window.EventSource) return;
  const list = panel.querySelector('.progress-list');
  const only = panel.dataset.progressSnapshot ? Number(panel.dataset.progressSnapshot) : null;
  const node = panel.dataset.progressNode || null;
  const dataSet = panel.dataset.progressDataSet || null;
  const reloadOnEnd = panel.hasAttribute('data-progress-reload');
  const stream = new EventSource('/snapshots/data/progress');
  stream.addEventListener('progress', (e) => {
    for (const op of JSON.parse(e.data)) {
      if (only !== null && op.snapshotId !== only && op.forSnapshotId !== only) continue;
      if ((node && op.node !== node) || (dataSet && op.dataSet !== dataSet)) continue;
      let li = list.querySelector('li[data-key="' + op.key + '"]');
      if (!li) {
        li = document.createElement('li');
        li.dataset.key = op.key;
        list.appendChild(li);
      }
      li.className = 'progress-' + op.state;
      li.textContent = op.text;
      if (op.state === 'failed') li.setAttribute('role', 'alert');
      const empty = panel.querySelector('[data-progress-empty]');
      if (empty) empty.remove();
      if (reloadOnEnd && op.op === 'snapshot' && op.snapshotId === only && op.state !== 'running') {
        stream.close();
        // A failed snapshot's row is gone: the line above says why, so stay on the page.
        if (op.state === 'ok') window.location.reload();
      }
    }
  });
  stream.addEventListener('session-ended', (e) => {
    stream.close();
    window.location.assign(JSON.parse(e.data).login);
  });
})();
