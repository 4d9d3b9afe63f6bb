// Live charts (uPlot) for elements marked data-chart; the facts list beside them is the no-JS view.
/* global uPlot */
'use strict';

(function () {
  if (typeof uPlot !== 'function') return;
  const MAX_POINTS = 20000;

  function fmtBytes(v) {
    if (v == null) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return v.toFixed(i ? 1 : 0) + ' ' + units[i];
  }

  function width(el) {
    return Math.max(280, el.clientWidth || 600);
  }

  function makeCharts(box, data) {
    const c = data.columns;
    const pctEl = box.querySelector('.chart-pct');
    const netEl = box.querySelector('.chart-net');
    const pct = new uPlot(
      {
        width: width(pctEl),
        height: 180,
        scales: { y: { range: [0, 100] } },
        series: [
          {},
          { label: 'CPU', stroke: '#2f6fbf', width: 1.5 },
          { label: 'Memory', stroke: '#8a4fbf', width: 1.5 },
          { label: 'Disk', stroke: '#c77800', width: 1.5 },
        ],
        axes: [{}, { values: (u, vals) => vals.map((v) => v + '%') }],
      },
      [c.t, c.cpu, c.mem, c.disk],
      pctEl,
    );
    const net = new uPlot(
      {
        width: width(netEl),
        height: 160,
        series: [
          {},
          { label: 'In', stroke: '#1b8a5a', width: 1.5, value: (u, v) => fmtBytes(v) + '/s' },
          { label: 'Out', stroke: '#b33a3a', width: 1.5, value: (u, v) => fmtBytes(v) + '/s' },
        ],
        axes: [{}, { size: 70, values: (u, vals) => vals.map(fmtBytes) }],
      },
      [c.t, c.rx, c.tx],
      netEl,
    );
    return { pct, net, cols: c };
  }

  function load(box, range) {
    const source = box.dataset.source;
    return fetch('/monitor/series.json?source=' + encodeURIComponent(source) + '&range=' + range, {
      credentials: 'same-origin',
    })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status))))
      .then((data) => {
        if (box.charts) {
          box.charts.pct.destroy();
          box.charts.net.destroy();
        }
        box.charts = makeCharts(box, data);
        box.dataset.range = range;
        box.dataset.ready = String(data.columns.t.length);
      });
  }

  function append(box, cols) {
    const ch = box.charts;
    if (!ch) return;
    for (const k of ['t', 'cpu', 'mem', 'disk', 'rx', 'tx']) {
      ch.cols[k].push(cols[k][0]);
      if (ch.cols[k].length > MAX_POINTS) ch.cols[k].shift();
    }
    const c = ch.cols;
    ch.pct.setData([c.t, c.cpu, c.mem, c.disk]);
    ch.net.setData([c.t, c.rx, c.tx]);
  }

  const boxes = Array.from(document.querySelectorAll('[data-chart]'));
  for (const box of boxes) {
    const ranges = box.querySelector('.chart-ranges');
    if (ranges) {
      ranges.hidden = false;
      ranges.addEventListener('click', (e) => {
        const b = e.target.closest('button[data-range]');
        if (b) load(box, b.dataset.range).catch(() => undefined);
      });
    }
    load(box, box.dataset.range || '1h').catch((err) => {
      box.dataset.error = String(err);
    });
  }
  window.addEventListener('resize', () => {
    for (const box of boxes) {
      if (!box.charts) continue;
      box.charts.pct.setSize({ width: width(box.querySelector('.chart-pct')), height: 180 });
      box.charts.net.setSize({ width: width(box.querySelector('.chart-net')), height: 160 });
    }
  });

  // One stream per page: samples for the charts, new events for the timeline, alert changes for the banner.
  if (!window.EventSource) return;
  const only = boxes.length === 1 && boxes[0].dataset.source !== 'master' ? boxes[0].dataset.source : '';
  const stream = new EventSource('/monitor/stream' + (only ? '?source=' + encodeURIComponent(only) : ''));
  stream.addEventListener('sample', (e) => {
    const msg = JSON.parse(e.data);
    for (const box of boxes) {
      if (
        box.dataset.source === msg.source &&
        (box.dataset.range === '15m' ||
          box.dataset.range === '1h' ||
          box.dataset.range === '6h' ||
          box.dataset.range === '24h')
      )
        append(box, msg.columns);
    }
  });
  stream.addEventListener('event', (e) => {
    const ev = JSON.parse(e.data);
    const body = document.querySelector('[data-live-events] tbody');
    if (!body) return;
    const tr = document.createElement('tr');
    tr.className = 'ev-' + ev.severity + ' is-new';
    const cols = body.rows[0] ? body.rows[0].cells.length : 5;
    const cells = [new Date(ev.at).toLocaleTimeString(), ev.severity];
    if (cols === 6) cells.push(ev.nodeMac || '—');
    cells.push(ev.kind, ev.message, ev.actor || '—');
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
    }
    body.insertBefore(tr, body.firstChild);
  });
  // The server ends the stream when the session ends (sign-out in another tab, idle timeout, user
  // deleted); without close() EventSource would reconnect, and the page would sit there looking live.
  stream.addEventListener('session-ended', (e) => {
    stream.close();
    window.location.assign(JSON.parse(e.data).login);
  });
  stream.addEventListener('alerts', (e) => {
    const list = JSON.parse(e.data);
    const box = document.getElementById('alerts');
    if (!box) return;
    box.textContent = '';
    for (const a of list) {
      const p = document.createElement('p');
      p.className = 'alert ' + (a.severity === 'error' ? 'alert-error' : 'alert-warn');
      p.setAttribute('role', 'alert');
      const strong = document.createElement('strong');
      strong.textContent = 'Alert: ';
      p.append(strong, a.message);
      box.appendChild(p);
    }
  });
})();
