/**
 * The OS image Corral builds must boot real servers (issue 22): Debian's generic kernel, and no pruned
 * module tree that holds a server's NIC or storage driver (paths as in Debian 12's generic kernel).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OS_IMAGE_PACKAGES, PRUNED_MODULE_DIRS, slimScript } from '../../node-images/os-image.js';

/** Where Debian 12's generic kernel keeps the drivers servers need (relative to lib/modules/<ver>). */
const SERVER_DRIVER_FILES = [
  'kernel/drivers/net/ethernet/intel/e1000/e1000.ko',
  'kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko',
  'kernel/drivers/net/ethernet/intel/igb/igb.ko',
  'kernel/drivers/net/ethernet/intel/ixgbe/ixgbe.ko',
  'kernel/drivers/net/ethernet/intel/i40e/i40e.ko',
  'kernel/drivers/net/ethernet/intel/ice/ice.ko',
  'kernel/drivers/net/ethernet/broadcom/bnxt/bnxt_en.ko',
  'kernel/drivers/net/ethernet/broadcom/tg3.ko',
  'kernel/drivers/net/ethernet/mellanox/mlx5/core/mlx5_core.ko',
  'kernel/drivers/net/ethernet/realtek/r8169.ko',
  'kernel/drivers/net/virtio_net.ko',
  'kernel/drivers/scsi/megaraid/megaraid_sas.ko',
  'kernel/drivers/scsi/mpt3sas/mpt3sas.ko',
  'kernel/drivers/ata/ahci.ko',
  'kernel/drivers/nvme/host/nvme.ko',
  'kernel/drivers/block/virtio_blk.ko',
  'kernel/drivers/gpu/drm/ast/ast.ko',
];

test('the OS image installs the generic kernel, not the cloud one', () => {
  assert.ok((OS_IMAGE_PACKAGES as readonly string[]).includes('linux-image-amd64'));
  // No cloud-flavoured kernel (cloud-init, issue 16, is no kernel).
  assert.ok(!OS_IMAGE_PACKAGES.some((p) => p.startsWith('linux-image') && p.includes('cloud')));
});

test('no pruned module tree holds a NIC, storage or BMC VGA driver', () => {
  for (const file of SERVER_DRIVER_FILES) {
    const pruner = PRUNED_MODULE_DIRS.find((d) => file.startsWith(`${d}/`));
    assert.equal(pruner, undefined, `${file} would be removed by ${pruner}`);
  }
  // And the shell that prunes removes exactly the listed trees.
  const script = slimScript('/r', '6.1.0-50-amd64');
  for (const d of PRUNED_MODULE_DIRS)
    assert.ok(
      script.includes(`rm -rf /r/usr/lib/modules/6.1.0-50-amd64/${d};`) ||
        script.endsWith(`rm -rf /r/usr/lib/modules/6.1.0-50-amd64/${d}`),
      d,
    );
});
