/**
 * Cost of one boot-timeline record under a boot storm: what the DHCP server pays per packet for
 * `activity.record(mac, dhcpStep(req, decision))`, with the buffered store (one transaction per batch,
 * bounds enforced there) beside the reference of one transaction per record.
 *
 *   node dist/test/bench/boot-activity-bench.js [--records 200000] [--macs 5000]
 *
 * Two storms: `--macs` new machines round robin (more than the store's 1000-MAC bound, so eviction runs),
 * and 200 machines retrying (every MAC past its 100-step bound, so trimming runs). References measured in
 * the same run: one transaction per record, and a bare batched INSERT of the same rows into a table with
 * one index (the floor any SQLite-backed timeline pays). A temporary database in WAL mode with
 * synchronous=NORMAL, as the master opens it. Prints; asserts nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { BootActivity, describe, dhcpStep } from '../../master/boot/activity.js';
import { DHCPDISCOVER, DHCPOFFER, emptyOptions, type DhcpPacket } from '../../master/dhcp/codec.js';
import { BootActivityStore } from '../../master/store/boot-activity.js';
import { openRepos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';

const { values } = parseArgs({
  options: { records: { type: 'string', default: '200000' }, macs: { type: 'string', default: '5000' } },
  strict: true,
});
const RECORDS = Number(values.records);
const MACS = Number(values.macs);

function mac(i: number): string {
  const hex = i.toString(16).padStart(6, '0');
  return `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

function packet(type: number, chaddr: string, yiaddr = '0.0.0.0'): DhcpPacket {
  return {
    op: type === DHCPDISCOVER ? 1 : 2,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 7,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr,
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr,
    sname: '',
    file: '',
    options: {
      ...emptyOptions(),
      messageType: type,
      ...(type === DHCPDISCOVER
        ? { vendorClassId: 'PXEClient:Arch:00000:UNDI:002001', clientArch: [0] }
        : { bootfileName: 'undionly.kpxe' }),
    },
  };
}

// Requests and replies built before timing: the server has them already when it records.
const requests = Array.from({ length: MACS }, (_, i) => ({
  req: packet(DHCPDISCOVER, mac(i)),
  decision: {
    reply: {
      packet: packet(DHCPOFFER, mac(i), `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
      to: { address: '255.255.255.255', port: 68, why: 'bench' },
    },
    note: 'offer',
  },
}));

function run(label: string, batch: number, records: number, macs: number): void {
  const dir = mkdtempSync(join(tmpdir(), 'corral-bootact-bench-'));
  const repos = openRepos({ path: join(dir, 'corral.db'), logger: silentLogger() });
  try {
    const store = new BootActivityStore(repos.store, { batch });
    const activity = new BootActivity({ store, logger: silentLogger() });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < records; i++) {
      const r = requests[i % macs]!;
      activity.record(r.req.chaddr, dhcpStep(r.req, r.decision));
    }
    activity.flush();
    const ns = Number(process.hrtime.bigint() - t0);
    const file = new Database(join(dir, 'corral.db'), { readonly: true });
    const kept = file.prepare('SELECT COUNT(*) AS n FROM boot_activity').get() as { n: number };
    const tracked = file.prepare('SELECT COUNT(*) AS n FROM boot_activity_macs').get() as { n: number };
    file.close();
    console.log(
      `${label.padEnd(40)} ${String(records).padStart(7)} records  ${(ns / records / 1000).toFixed(2).padStart(7)} µs/record  ` +
        `${Math.round(records / (ns / 1e9))
          .toLocaleString('en')
          .padStart(9)} records/s  kept ${kept.n} rows, ${tracked.n} MACs`,
    );
  } finally {
    repos.store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// The step building alone (no store): the part that runs on every packet even when nothing is written.
{
  const t0 = process.hrtime.bigint();
  let n = 0;
  for (let i = 0; i < RECORDS; i++) {
    const r = requests[i % requests.length]!;
    n += describe(dhcpStep(r.req, r.decision)).summary.length;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(
    `${'dhcpStep + describe only'.padEnd(40)} ${String(RECORDS).padStart(7)} records  ${(ns / RECORDS / 1000).toFixed(2).padStart(7)} µs/record  (${n} chars)`,
  );
}
run(`record, buffered, ${MACS} MACs (evicting)`, 512, RECORDS, MACS);
run('record, buffered, 200 MACs (trimming)', 512, RECORDS, 200);
run(`reference: a transaction per record, ${MACS} MACs`, 1, Math.min(RECORDS, 20_000), MACS);

// The floor: the same rows, batched, into a table with one index and nothing else.
{
  const dir = mkdtempSync(join(tmpdir(), 'corral-bootact-bench-'));
  // A connection of the bench's own, on Corral's schema: the floor without the store's code.
  const repos = openRepos({ path: join(dir, 'corral.db'), logger: silentLogger() });
  const db = new Database(join(dir, 'corral.db'));
  try {
    db.exec('CREATE TABLE bare (id INTEGER PRIMARY KEY, mac TEXT, at TEXT, summary TEXT, detail TEXT)');
    db.exec('CREATE INDEX bare_mac ON bare (mac, id)');
    const insert = db.prepare('INSERT INTO bare (mac, at, summary, detail) VALUES (?, ?, ?, ?)');
    const t0 = process.hrtime.bigint();
    for (let done = 0; done < RECORDS; done += 512) {
      db.transaction(() => {
        for (let i = done; i < Math.min(done + 512, RECORDS); i++) {
          const r = requests[i % MACS]!;
          const step = dhcpStep(r.req, r.decision);
          insert.run(r.req.chaddr, new Date().toISOString(), describe(step).summary, JSON.stringify(step));
        }
      })();
    }
    const ns = Number(process.hrtime.bigint() - t0);
    console.log(
      `${'reference: bare batched INSERT'.padEnd(40)} ${String(RECORDS).padStart(7)} records  ${(ns / RECORDS / 1000).toFixed(2).padStart(7)} µs/record`,
    );
  } finally {
    db.close();
    repos.store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
