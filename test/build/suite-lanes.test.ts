import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { orderHint, QEMU_FILES, RUN_FIRST, RUN_LAST } from '../support/lanes.js';

/**
 * The suite's lanes (test/support/lanes.ts): a file that boots QEMU must be in the `e2e-qemu` project
 * (one at a time), never in `e2e`, where files run two at a time beside the QEMU lane and two TCG machines
 * would each take a core.
 */
const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** What starts a VM in a test file: QEMU itself, the e2e rack, its VMs, the power tests' QMP machine. */
const BOOTS_QEMU = /qemu-system|(?<![A-Za-z])Rack\.start\(|bootVm\(|new QemuMachine\(/;

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' ? [] : testFiles(p);
    return e.name.endsWith('.test.ts') ? [relative(REPO, p).split('\\').join('/')] : [];
  });
}

describe('test suite lanes', () => {
  const all = testFiles(join(REPO, 'test'));

  it('every e2e file that boots QEMU is in QEMU_FILES, and every listed file exists and boots QEMU', () => {
    const booting = all.filter((f) => f !== 'test/build/suite-lanes.test.ts' && BOOTS_QEMU.test(readFileSync(join(REPO, f), 'utf8')));
    expect(booting.length).toBeGreaterThan(0);
    expect([...booting].sort()).toEqual([...QEMU_FILES].sort());
    for (const f of QEMU_FILES) expect(existsSync(join(REPO, f)), f).toBe(true);
  });

  it('the order hints name existing files, and the deploy files (Debian image users) run last', () => {
    for (const f of [...RUN_FIRST, ...RUN_LAST]) expect(all, f).toContain(f);
    expect(orderHint('test/images/debian-image.test.ts')).toBe(-1);
    expect(orderHint('test/deploy/deploy.test.ts')).toBe(1);
    expect(orderHint('test/e2e/bios.test.ts')).toBe(0);
  });
});
