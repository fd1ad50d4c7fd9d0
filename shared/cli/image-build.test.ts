import { describe, expect, it } from 'vitest';
import { imageBuildCommand, InvalidImageBuildError } from './image-build.js';

describe('imageBuildCommand', () => {
  it('maps debian and its options to build-debian.sh, in order, values as separate arguments', () => {
    expect(imageBuildCommand('debian', { release: 'bookworm', size: '3G', packages: 'jq,vim', ssh: true, force: true, out: '/var/tmp/x y' })).toEqual({
      script: 'scripts/images/build-debian.sh',
      args: ['--force', '--release', 'bookworm', '--size', '3G', '--packages', 'jq,vim', '--ssh', '--out', '/var/tmp/x y'],
    });
    expect(imageBuildCommand('debian', {})).toEqual({ script: 'scripts/images/build-debian.sh', args: [] });
  });

  it('keeps discovery as it was: only --force', () => {
    expect(imageBuildCommand('discovery', { force: true })).toEqual({ script: 'scripts/images/build-discovery.sh', args: ['--force'] });
    expect(() => imageBuildCommand('discovery', { ssh: true, size: '2G' })).toThrow(/takes only --force \(not --size, --ssh\)/);
  });

  it('refuses unknown images with a typed error naming the known ones', () => {
    expect(() => imageBuildCommand('../../etc/passwd', {})).toThrow(InvalidImageBuildError);
    expect(() => imageBuildCommand('ubuntu', {})).toThrow(/known: discovery, debian/);
  });
});
