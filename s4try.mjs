import { startMasterProcess } from './dist/test/helpers/master-process.js';
import { Browser } from './dist/test/helpers/browser.js';
import { writeFileSync } from 'node:fs';
const dir = '/tmp/corral-inv-scale-BYZIF9';
const cfg = dir + '/try.json';
writeFileSync(cfg, JSON.stringify({ dataDir: dir + '/data', address: '127.0.0.1', http: { port: 0, bind: '127.0.0.1' }, tftp: { enabled: false }, lb: { enabled: false }, console: { https: false }, nodeImage: { autoBuild: false }, monitor: { enabled: true, nodeSshSeconds: 0 } }));
const m = await startMasterProcess({ args: ['--config', cfg], env: { CORRAL_ADMIN_PASSWORD: 'inventory-scale-bench-pw', CORRAL_LOG_LEVEL: 'warn', NODE_OPTIONS: '--import /tmp/s4prof/hook.mjs' }, timeoutMs: 120000 });
try {
  const b = new Browser(m.url); await b.login('admin', 'inventory-scale-bench-pw');
  for (const p of ['/nodes', '/nodes?page=100', '/nodes', '/nodes?page=100']) {
    const xs = [];
    for (let i = 0; i < 15; i++) { const t = performance.now(); await (await b.get(p)).text(); xs.push(performance.now() - t); }
    xs.sort((a, b) => a - b); console.log(p, xs[7].toFixed(1));
  }
} finally { await m.stop('SIGTERM', 30000); }
