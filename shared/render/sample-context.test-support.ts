import type { BootEnv } from '../bootenv/schema.js';
import type { RenderContext, MachineInfo } from './context.js';

/** A complete render context for a made-up machine, for the renderer's and the library's tests. */
export function sampleContext(bootenv: BootEnv, opts: { machine?: Partial<MachineInfo>; params?: Record<string, unknown>; snippets?: Record<string, string> } = {}): RenderContext {
  const httpUrl = 'http://198.18.0.1:8080';
  const token = 'tok_sample_0123456789';
  return {
    machine: {
      id: 'm-0001',
      name: 'node01',
      macs: ['52:54:00:12:34:56'],
      uuid: '4c4c4544-0042-3510-8052-b4c04f4e3232',
      serial: 'SN0001',
      address: '198.18.0.10',
      hostname: 'node01',
      arch: 'x86_64',
      platform: 'pcbios',
      known: true,
      netboot: true,
      ...opts.machine,
    },
    site: { name: 'lab' },
    params: opts.params ?? {},
    bootenv,
    agent: { httpUrl, tftpAddress: '198.18.0.1', pubkey: Buffer.alloc(32, 7).toString('base64') },
    token,
    urls: {
      files: (p: string) => (/^https?:\/\//.test(p) ? p : `${httpUrl}/files/${p}`),
      machineBase: `${httpUrl}/m/${token}`,
      done: `${httpUrl}/m/${token}/done`,
    },
    snippets: opts.snippets,
  };
}

/** Params that satisfy every boot environment in images/bootenvs. */
export const SAMPLE_PARAMS: Record<string, unknown> = {
  install_disk: '/dev/sda',
  root_password_hash: '$6$rounds=4096$saltsalt$8s0yTtHcmTn3KJr0Q5.hlQTvA2mS1y8yVwE0f4T5cU2oS8cI3p7G9Xk0b1nQwq7v0h9XQb0mJ7Z3g5x6Y3X4a.',
  admin_password_hash: '$6$rounds=4096$saltsalt$8s0yTtHcmTn3KJr0Q5.hlQTvA2mS1y8yVwE0f4T5cU2oS8cI3p7G9Xk0b1nQwq7v0h9XQb0mJ7Z3g5x6Y3X4a.',
  ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8xO2vU0hQ0v6N7kKX0r4cQ9x1Yb2m3n4o5p6q7r8s ops@example'],
  timezone: 'Europe/Paris',
  packages: ['htop', 'jq'],
  ntp_servers: ['ntp1.example.net', 'ntp2.example.net'],
  domain: 'lab.example',
  talos_machine_config: 'version: v1alpha1\nmachine:\n  type: worker\n  install:\n    disk: /dev/sda\ncluster:\n  controlPlane:\n    endpoint: https://198.18.0.5:6443\n',
  linuxkit_user_data: '{"hello":"world"}',
  ignition_users: [{ name: 'ops', sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8xO2vU0hQ0v6N7kKX0r4cQ9x1Yb2m3n4o5p6q7r8s ops@example'] }],
  ignition_files: [{ path: '/etc/motd', mode: 420, overwrite: true, contents: { source: 'data:,hello%0A' } }],
  ignition_units: [{ name: 'hello.service', enabled: true, contents: '[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n' }],
};
