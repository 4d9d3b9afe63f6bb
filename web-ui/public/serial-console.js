/*
 * The serial console page (issue 20): xterm.js bound to the node's serial line over a WebSocket on this
 * same origin. Binary frames carry terminal bytes both ways; text frames carry JSON control messages
 * (master/serial-console/hub.ts). Keys go to the line only while this page holds the writer role; the
 * server drops a watcher's bytes anyway. Resize re-fits the terminal here and tells the server the size
 * (a serial line cannot carry it); the "Tell the shell the size" button types `stty rows R cols C`.
 * The replay view writes a recorded session's output into the same kind of terminal.
 */
/* global TextEncoder, URL, WebSocket */
(function () {
  'use strict';
  var Terminal = window.Terminal;
  var FitAddon = window.FitAddon && window.FitAddon.FitAddon;
  if (!Terminal || !FitAddon) return;

  function makeTerminal(el) {
    el.style.height = '60vh';
    var term = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000, fontSize: 14 });
    var fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el);
    fit.fit();
    return { term: term, fit: fit };
  }

  var replay = document.querySelector('[data-serial-replay]');
  if (replay) {
    var r = makeTerminal(replay);
    fetch(replay.getAttribute('data-raw-path'), { credentials: 'same-origin' })
      .then(function (res) {
        return res.arrayBuffer();
      })
      .then(function (buf) {
        r.term.write(new Uint8Array(buf));
      });
    return;
  }

  var el = document.querySelector('[data-serial-console]');
  if (!el) return;
  var status = document.querySelector('[data-console-status]');
  var sizeLabel = document.querySelector('[data-console-size]');
  var sttyButton = document.querySelector('[data-console-stty]');
  var takeover = document.querySelector('[data-console-takeover]');
  var t = makeTerminal(el);
  var term = t.term;
  var writer = false;
  var encoder = new TextEncoder();

  var url = new URL(el.getAttribute('data-ws-path'), window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('csrf', el.getAttribute('data-csrf') || '');
  var ws = new WebSocket(url.toString());
  ws.binaryType = 'arraybuffer';

  function say(text) {
    if (status) status.textContent = text;
  }
  function control(msg) {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }
  function sendSize() {
    if (sizeLabel) sizeLabel.textContent = term.cols + ' × ' + term.rows;
    control({ type: 'resize', cols: term.cols, rows: term.rows });
  }
  function setRole(role, by) {
    writer = role === 'writer';
    el.setAttribute('data-role', role);
    if (sttyButton) sttyButton.disabled = !writer;
    if (takeover) takeover.hidden = writer;
    say(writer ? 'Connected: you are typing.' : 'Connected read-only: ' + (by || 'nobody') + ' is typing.');
  }

  ws.onmessage = function (ev) {
    if (typeof ev.data !== 'string') {
      term.write(new Uint8Array(ev.data));
      return;
    }
    var msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (msg.type === 'hello' || msg.type === 'role') {
      setRole(msg.role, msg.writer);
      if (writer) sendSize();
    } else if (msg.type === 'size') {
      if (sizeLabel) sizeLabel.textContent = 'writer: ' + msg.cols + ' × ' + msg.rows;
    } else if (msg.type === 'closed') {
      say('Closed: ' + msg.reason);
    }
  };
  ws.onopen = function () {
    say('Connected.');
  };
  ws.onclose = function (ev) {
    el.setAttribute('data-role', 'closed');
    if (sttyButton) sttyButton.disabled = true;
    if (status && status.textContent.indexOf('Closed') !== 0)
      say('Disconnected' + (ev.reason ? ': ' + ev.reason : '') + '. Reload the page to connect again.');
  };
  // Keys (Ctrl-C is the byte 0x03 here) go to the line as they are typed.
  term.onData(function (data) {
    if (writer && ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
  });
  window.addEventListener('resize', function () {
    t.fit.fit();
  });
  term.onResize(function () {
    if (writer) sendSize();
  });
  if (sttyButton)
    sttyButton.addEventListener('click', function () {
      if (writer) ws.send(encoder.encode('stty rows ' + term.rows + ' cols ' + term.cols + '\r'));
      term.focus();
    });
  if (takeover)
    takeover.addEventListener('click', function () {
      control({ type: 'takeover' });
    });
  term.focus();
})();
