/**
 * The pure parts of enrolment rules (issue 16): facts from a realistic inventory, the matcher's order,
 * limits and every kind of test, name patterns, and the validation errors with their stable codes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { factsOf, firstMatchingRule, mismatch, type MatchableRule } from '../../master/enrolment/match.js';
import { labelPart, renderName } from '../../master/enrolment/name-pattern.js';
import { parseRuleSpec, type RuleMatch } from '../../master/enrolment/rule.js';
import { compilePattern } from '../../master/enrolment/pattern.js';
import { applyTagChange, parseTagWords } from '../../master/nodes/tags.js';
import { CorralError } from '../../master/util/errors.js';

const GiB = 2 ** 30;

/** What node-images/agent/corral-agent reports for a Dell-like two-socket server (shape of InventorySchema). */
const R640 = {
  mac: 'b8:ca:3a:01:02:03',
  ip: '10.20.0.57',
  firmware: 'uefi',
  inventory: {
    cpu: { model: 'Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz', count: 48 },
    memoryBytes: 192 * GiB,
    firmware: 'uefi',
    disks: [
      { name: 'sda', sizeBytes: 480 * 10 ** 9, model: 'SSDSC2KB480G8R', serial: 'PHYF1', rotational: false },
      { name: 'sdb', sizeBytes: 1920 * 10 ** 9, model: 'MZ7LH1T9', serial: 'S455', rotational: false },
    ],
    nics: [
      { name: 'eno1', mac: 'b8:ca:3a:01:02:03', link: 'up', speedMbps: 1000 },
      { name: 'ens2f0', mac: '3c:fd:fe:aa:bb:cc', link: 'up', speedMbps: 25000 },
    ],
    dmi: { vendor: 'Dell Inc.', product: 'PowerEdge R640', serial: '7XK2J93' },
  },
} as const;

const VM = {
  mac: '52:54:00:12:34:56',
  ip: '10.99.0.101',
  firmware: 'bios',
  inventory: {
    cpu: { model: 'QEMU Virtual CPU version 2.5+', count: 1 },
    memoryBytes: 512 * 2 ** 20,
    disks: [{ name: 'vda', sizeBytes: 4 * GiB }],
    nics: [{ name: 'eth0', mac: '52:54:00:12:34:56', link: 'up', speedMbps: null }],
    dmi: { vendor: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)', serial: null },
  },
} as const;

const rule = (id: number, match: RuleMatch, extra: Partial<MatchableRule> = {}): MatchableRule => ({
  id,
  enabled: true,
  limit: null,
  match,
  ...extra,
});

describe('enrolment facts and matcher', () => {
  const dell = factsOf({ ...R640, inventory: R640.inventory as unknown as Record<string, unknown> });
  const vm = factsOf({ ...VM, inventory: VM.inventory as unknown as Record<string, unknown> });

  it('derives facts from the agent inventory', () => {
    assert.deepEqual(dell.macs, ['b8:ca:3a:01:02:03', '3c:fd:fe:aa:bb:cc']);
    assert.equal(dell.memoryGiB, 192);
    assert.equal(dell.diskCount, 2);
    assert.equal(Math.round(dell.diskGiB!), 1788);
    assert.equal(dell.nicSpeedMbps, 25000);
    assert.equal(dell.firmware, 'uefi');
    assert.equal(vm.nicSpeedMbps, null);
    assert.equal(vm.serial, null);
  });

  it('tests every kind of fact, and says why not', () => {
    const cases: [RuleMatch, string | null][] = [
      [{}, null],
      [{ mac: ['b8:ca:3a'] }, null],
      [{ mac: ['3c:fd:fe'] }, null], // a second NIC's OUI counts
      [{ mac: ['52:54:00'] }, 'no MAC starts with 52:54:00'],
      [{ vendor: 'dell*' }, null], // globs are case-insensitive
      [{ product: 'PowerEdge R?40' }, null],
      [{ product: '/^PowerEdge R[67]50$/' }, "product 'PowerEdge R640' is not /^PowerEdge R[67]50$/"],
      [{ cpuModel: '/xeon/i' }, null],
      [{ cpuCount: { min: 32 } }, null],
      [{ memoryGiB: { min: 256 } }, 'memoryGiB 192 < 256'],
      [{ memoryGiB: { max: 128 } }, 'memoryGiB 192 > 128'],
      [{ diskCount: { min: 2, max: 2 } }, null],
      [{ diskGiB: { min: 1000 } }, null],
      [{ nicCount: { max: 1 } }, 'nicCount 2 > 1'],
      [{ nicSpeedMbps: { min: 10000 } }, null],
      [{ firmware: 'bios' }, 'firmware uefi, not bios'],
      [{ subnet: ['10.20.0.0/24'] }, null],
      [{ subnet: ['10.21.0.0/16', '10.99.0.0/24'] }, '10.20.0.57 not in 10.21.0.0/16, 10.99.0.0/24'],
    ];
    for (const [match, want] of cases) assert.equal(mismatch(match, dell), want, JSON.stringify(match));
    assert.equal(mismatch({ tags: ['web'] }, dell), 'no tag web');
    assert.equal(mismatch({ tags: ['web'] }, { ...dell, tags: ['rack:a3', 'web'] }), null);
    // A fact the node did not report never matches a test on it.
    assert.equal(mismatch({ serial: '*' }, vm), 'serial unknown');
    assert.equal(mismatch({ nicSpeedMbps: { min: 1 } }, vm), 'nicSpeedMbps unknown');
  });

  it('takes the first enabled rule in order that matches and is under its limit', () => {
    const big = rule(1, { memoryGiB: { min: 64 } }, { limit: 2 });
    const off = rule(2, { vendor: 'Dell*' }, { enabled: false });
    const dellAny = rule(3, { vendor: 'Dell*' });
    const any = rule(4, {});
    const rules = [big, off, dellAny, any];
    assert.equal(firstMatchingRule(rules, dell, new Map())?.id, 1);
    assert.equal(firstMatchingRule(rules, dell, new Map([[1, 1]]))?.id, 1);
    assert.equal(firstMatchingRule(rules, dell, new Map([[1, 2]]))?.id, 3, 'limit reached: next rule');
    assert.equal(firstMatchingRule(rules, vm, new Map())?.id, 4);
    assert.equal(firstMatchingRule([big, off, dellAny], vm, new Map()), undefined);
  });
});

describe('enrolment name patterns', () => {
  it('renders placeholders into a DNS label', () => {
    assert.equal(renderName('web-{n}', { n: 3 }), 'web-3');
    assert.equal(
      renderName('{vendor}-{serial}', { vendor: 'Dell Inc.', serial: '7XK2J93' }),
      'dell-inc-7xk2j93',
    );
    assert.equal(renderName('rack2-{seq}-{mac}', { seq: 12, mac: '525400123456' }), 'rack2-12-525400123456');
    assert.equal(labelPart('  HPE ProLiant DL360 Gen10 '), 'hpe-proliant-dl360-gen10');
    // A missing fact gives no name (the node keeps its own), never `-` or an empty label.
    assert.equal(renderName('{vendor}-{serial}', { vendor: 'QEMU', serial: null }), undefined);
    assert.equal(renderName('x-{product}', { product: 'a'.repeat(100) })?.length, 63);
  });

  it('refuses unknown placeholders and characters a name cannot hold', () => {
    assert.throws(
      () => parseRuleSpec({ name: 'r', outcome: { name: 'web-{rack}' } }),
      codeIs('RULE_INVALID'),
    );
    assert.throws(() => parseRuleSpec({ name: 'r', outcome: { name: 'Web_{n}' } }), codeIs('RULE_INVALID'));
  });
});

function codeIs(code: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof CorralError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe('enrolment rule validation', () => {
  it('accepts a full rule and fills defaults', () => {
    const spec = parseRuleSpec({
      name: 'web-servers',
      limit: 10,
      match: { mac: ['B8-CA-3A'], vendor: 'Dell*', memoryGiB: { min: 64 }, firmware: 'uefi' },
      outcome: {
        name: 'web-{n}',
        role: 'web',
        tags: ['web', 'rack:a3'],
        action: { type: 'deploy', image: 'debian-12' },
      },
    });
    assert.equal(spec.enabled, true);
    assert.deepEqual(spec.match.mac, ['b8:ca:3a']);
    assert.deepEqual(parseRuleSpec({ name: 'catch-all' }).outcome, { action: { type: 'wait' } });
  });

  it('gives each bad input its stable code', () => {
    assert.throws(
      () => parseRuleSpec({ name: 'r', match: { vendor: '/([a-z/' } }),
      codeIs('RULE_PATTERN_INVALID'),
    );
    assert.throws(
      () => parseRuleSpec({ name: 'r', match: { vendor: '/a/g' } }),
      codeIs('RULE_PATTERN_INVALID'),
    );
    assert.throws(() => parseRuleSpec({ name: 'r', limit: 1e12 }), codeIs('RULE_INVALID'));
    assert.throws(() => parseRuleSpec({ name: 'r', limit: 0 }), codeIs('RULE_INVALID'));
    assert.throws(
      () => parseRuleSpec({ name: 'r', match: { memoryGiB: { min: 8, max: 4 } } }),
      codeIs('RULE_INVALID'),
    );
    assert.throws(() => parseRuleSpec({ name: 'r', match: { memoryGiB: {} } }), codeIs('RULE_INVALID'));
    assert.throws(
      () => parseRuleSpec({ name: 'r', match: { subnet: ['10.0.0.300/24'] } }),
      codeIs('RULE_INVALID'),
    );
    assert.throws(() => parseRuleSpec({ name: 'r', match: { colour: 'blue' } }), codeIs('RULE_INVALID'));
    assert.throws(() => parseRuleSpec({ name: 'Bad Name' }), codeIs('RULE_INVALID'));
    assert.throws(
      () => parseRuleSpec({ name: 'r', outcome: { tags: ['Web Servers'] } }),
      codeIs('TAG_INVALID'),
    );
    assert.throws(
      () => parseRuleSpec({ name: 'r', outcome: { action: { type: 'deploy' } } }),
      codeIs('RULE_INVALID'),
    );
  });

  it('compiles globs literally apart from * and ?', () => {
    assert.equal(compilePattern('R640 (rev. 2)', 'p')('r640 (rev. 2)'), true);
    assert.equal(compilePattern('a.c', 'p')('abc'), false);
  });
});

describe('tags', () => {
  it('adds, removes and replaces, sorted and unique', () => {
    assert.deepEqual(applyTagChange(['b', 'a'], { add: ['c', 'a'], remove: ['b'] }), ['a', 'c']);
    assert.deepEqual(applyTagChange(['x'], { set: ['z', 'y'] }), ['y', 'z']);
    assert.deepEqual(parseTagWords(['+web', '-old', 'rack:a3']), {
      add: ['web', 'rack:a3'],
      remove: ['old'],
    });
  });
  it('refuses bad tags and too many', () => {
    assert.throws(() => applyTagChange([], { add: ['Web'] }), codeIs('TAG_INVALID'));
    assert.throws(() => parseTagWords(['+']), codeIs('TAG_INVALID'));
    const many = Array.from({ length: 33 }, (_, i) => `t${i}`);
    assert.throws(() => applyTagChange([], { add: many }), codeIs('TAG_INVALID'));
  });
});
