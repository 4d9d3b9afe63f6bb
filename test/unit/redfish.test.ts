/**
 * The Redfish driver's pure decisions (master/remote/redfish.ts, redfish-http.ts), the rule's BMC address
 * patterns (master/enrolment/power-outcome.ts) and the lab VM's QMP option. The protocol itself is tested
 * over HTTPS in test/integration/redfish-power.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseResetType, powerStateOf } from '../../master/remote/redfish.js';
import { odataId, redfishErrorText } from '../../master/remote/redfish-http.js';
import { actionsOf } from '../../master/remote/power.js';
import { bmcAddressFor } from '../../master/enrolment/power-outcome.js';
import { parseRuleSpec } from '../../master/enrolment/rule.js';
import { qemuArgs } from '../../master/lab/qemu.js';
import { isCorralError } from '../../master/util/errors.js';

test('ResetType: the advertised one by preference; all of the schema when nothing is advertised', () => {
  assert.equal(chooseResetType('on', ['ForceOff', 'On']), 'On');
  assert.equal(chooseResetType('on', ['PushPowerButton']), 'PushPowerButton');
  assert.equal(chooseResetType('off', ['GracefulShutdown', 'ForceOff']), 'ForceOff');
  assert.equal(chooseResetType('cycle', ['On', 'ForceOff', 'ForceRestart']), 'ForceRestart');
  assert.equal(chooseResetType('cycle', ['On', 'ForceOff']), undefined, 'the driver then does off + on');
  assert.equal(chooseResetType('cycle', []), 'PowerCycle');
});

test('PowerState: transitions count as where they are going; anything else is no answer', () => {
  assert.equal(powerStateOf('On'), 'on');
  assert.equal(powerStateOf('PoweringOn'), 'off');
  assert.equal(powerStateOf('PoweringOff'), 'on');
  assert.equal(powerStateOf('Off'), 'off');
  assert.equal(powerStateOf('Paused'), undefined);
  assert.equal(powerStateOf(undefined), undefined);
});

test('Redfish error bodies and navigation links', () => {
  const body = {
    error: {
      code: 'Base.1.8.GeneralError',
      message: 'A general error has occurred.',
      '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.PropertyValueNotInList', Message: 'Bad value.' }],
    },
  };
  assert.equal(redfishErrorText(body), 'Bad value.');
  assert.equal(redfishErrorText({ error: { message: 'plain' } }), 'plain');
  assert.equal(redfishErrorText({}), undefined);
  assert.equal(odataId({ '@odata.id': '/redfish/v1/Systems' }), '/redfish/v1/Systems');
  assert.equal(odataId({ '@odata.id': 'https://evil.example/x' }), undefined, 'only paths on the same BMC');
  assert.equal(odataId('x'), undefined);
});

test('actions per driver: UEFI HTTP boot only where the protocol has it', () => {
  assert.deepEqual(actionsOf('redfish'), ['on', 'off', 'cycle', 'pxe', 'uefi-http', 'disk']);
  assert.ok(!actionsOf('ipmi').includes('uefi-http'));
  assert.deepEqual(actionsOf('wol'), ['on']);
});

test('a rule BMC address pattern over the machine facts; a missing fact is named', () => {
  const node = {
    ip: '10.0.0.37',
    mac: '52:54:00:aa:bb:cc',
    inventory: { dmi: { serial: 'ABC 123/X' } },
  };
  assert.deepEqual(bmcAddressFor('10.0.5.{ip4}', node), { address: '10.0.5.37' });
  assert.deepEqual(bmcAddressFor('idrac-{serial}', node), { address: 'idrac-abc-123-x' });
  assert.deepEqual(bmcAddressFor('bmc-{mac}.lab', node), { address: 'bmc-525400aabbcc.lab' });
  const none = bmcAddressFor('10.0.5.{ip4}', { ...node, ip: null });
  assert.ok('missing' in none && /\{ip4\}/.test(none.missing));
  const rule = (power: unknown) => () => parseRuleSpec({ name: 'r', outcome: { power } });
  assert.throws(rule({ driver: 'redfish', address: '10.0.5.{nope}', username: 'u' }), (e: unknown) =>
    isCorralError(e),
  );
  assert.throws(rule({ driver: 'redfish', address: '10.0.5.1' }), (e: unknown) => isCorralError(e));
  assert.doesNotThrow(rule({ driver: 'auto', address: '10.0.5.{ip4}', username: 'u', password: 'p' }));
  assert.doesNotThrow(rule({ driver: 'wol' }));
});

test('a lab VM with a QMP socket: the socket and the device ids QMP commands name', () => {
  const args = qemuArgs(
    {
      name: 'vm1',
      qmpSocket: '/tmp/vm1.qmp',
      mac: '52:54:00:01:00:01',
      firmware: 'bios',
      nic: 'virtio',
      memoryMb: 512,
      cpus: 1,
      diskPath: '/tmp/d.qcow2',
      diskGb: 4,
      diskSerial: 'S1',
      tap: 'tap0',
      noReboot: false,
    },
    undefined,
  );
  const line = args.join(' ');
  assert.match(line, /-qmp unix:\/tmp\/vm1\.qmp,server=on,wait=off/);
  assert.match(line, /virtio-net-pci,[^ ]*bootindex=1,id=nic0/);
  assert.match(line, /virtio-blk-pci,[^ ]*bootindex=2,id=disk0/);
});
