/**
 * What images/discovery/collect.sh prints on a two-socket UEFI server with a BMC (its exact key order and
 * value kinds: strings from json_str, "" for what the firmware leaves empty, null for a NIC speed the
 * kernel does not know). Tests of the facts schema and of the inventory's unsafe marking use it.
 */
export const COLLECTOR_SAMPLE = {
  system: { uuid: '4c4c4544-0042-3510-8052-b4c04f334d32', serial: '', vendor: 'Dell Inc.', product: 'PowerEdge R650' },
  firmware: 'uefi',
  cpu: { model: 'Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz', sockets: 2, cores: 64, threads: 128 },
  memory: { totalBytes: 549755813888 },
  disks: [
    { name: 'nvme0n1', sizeBytes: 1920383410176, model: 'SAMSUNG MZQL21T9HCJR-00A07', serial: 'S64GNE0R600123', rotational: false },
    { name: 'sda', sizeBytes: 480103981056, model: 'MZ7L3480HCHQ0D3', serial: '', rotational: true },
  ],
  nics: [
    { name: 'eno12399np0', mac: 'b4:96:91:aa:bb:01', driver: 'ice', link: true, speedMbps: 25000, addresses: ['198.18.0.40/24', 'fe80::b696:91ff:feaa:bb01/64'] },
    { name: 'eno12409np1', mac: 'b4:96:91:aa:bb:02', driver: 'ice', link: false, speedMbps: null, addresses: [] },
  ],
  bmc: { address: '10.250.0.17' },
  bootMac: 'b4:96:91:aa:bb:01',
} as const;
