import { describe, expect, it } from 'vitest';
import { requirePinned, unpinnedUrls, UnpinnedUrlError } from './pinning.js';

const SHA = 'a'.repeat(64);
const env = {
  name: 'x',
  kernel: { url: 'https://up.example/vmlinuz' },
  initrds: [{ url: 'https://up.example/initrd', sha256: SHA }, { url: 'http://up.example/extra.cpio' }, { url: 'local/extra.cpio' }],
};

describe('pinning', () => {
  it('lists upstream kernel/initrd URLs without a sha256, not pinned ones or boot-dir paths', () => {
    expect(unpinnedUrls(env)).toEqual([
      { field: 'kernel.url', url: 'https://up.example/vmlinuz' },
      { field: 'initrds.1.url', url: 'http://up.example/extra.cpio' },
    ]);
    expect(unpinnedUrls({ kernel: { url: 'discovery/vmlinuz' }, initrds: [] })).toEqual([]);
  });

  it('refuses unless allowed, naming every URL and the field to pin', () => {
    expect(() => requirePinned(env, false)).toThrow(UnpinnedUrlError);
    expect(() => requirePinned(env, false)).toThrow(/https:\/\/up\.example\/vmlinuz \(kernel\.url\).*http:\/\/up\.example\/extra\.cpio.*kernel\.sha256, initrds\.1\.sha256.*--allow-unpinned/);
    expect(() => requirePinned(env, true)).not.toThrow();
    expect(() => requirePinned({ ...env, kernel: { url: env.kernel.url, sha256: SHA }, initrds: [] }, false)).not.toThrow();
  });
});
