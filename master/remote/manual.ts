/**
 * The manual driver: for machines without a BMC or WoL. The master cannot act, so every action becomes a
 * warning event asking the operator to do it (the console's event log and banner show it).
 */
import type { PowerDriver } from './power-driver.js';

const ASK = {
  on: 'press the power button',
  off: 'hold the power button (or shut it down)',
  cycle: 'power-cycle it (off, then on)',
  pxe: 'choose network (PXE) boot in its boot menu (F12 on many machines)',
  'uefi-http': 'choose UEFI HTTP boot in its boot menu',
  disk: 'choose its disk in its boot menu',
} as const;

export function manualDriver(nodeName: string): PowerDriver {
  return {
    kind: 'manual',
    actions: ['on', 'off', 'cycle', 'pxe', 'uefi-http', 'disk'],
    status: () => Promise.resolve('unknown'),
    act: (action) =>
      Promise.resolve({ message: `operator action needed on ${nodeName}: ${ASK[action]}`, manual: true }),
  };
}
