/** Which script builds which image, and the arguments `underlay images build <image>` passes to it. */

export const BUILDABLE_IMAGES = ['discovery', 'debian'] as const;
export type BuildableImage = (typeof BUILDABLE_IMAGES)[number];

export interface ImageBuildOptions {
  force?: boolean;
  release?: string;
  size?: string;
  packages?: string;
  ssh?: boolean;
  out?: string;
}

/** A build request the scripts would refuse (unknown image, option the image does not take). */
export class InvalidImageBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidImageBuildError';
  }
}

const DEBIAN_ONLY = ['release', 'size', 'packages', 'ssh', 'out'] as const;

/** The script (relative to the repository root) and its argument list for one build request. */
export function imageBuildCommand(image: string, o: ImageBuildOptions): { script: string; args: string[] } {
  if (!(BUILDABLE_IMAGES as readonly string[]).includes(image)) throw new InvalidImageBuildError(`unknown image "${image}" (known: ${BUILDABLE_IMAGES.join(', ')})`);
  const force = o.force ? ['--force'] : [];
  if (image === 'discovery') {
    const extra = DEBIAN_ONLY.filter((k) => o[k] !== undefined);
    if (extra.length > 0) throw new InvalidImageBuildError(`images build discovery takes only --force (not ${extra.map((k) => `--${k}`).join(', ')})`);
    return { script: 'scripts/images/build-discovery.sh', args: force };
  }
  const args = [...force];
  if (o.release !== undefined) args.push('--release', o.release);
  if (o.size !== undefined) args.push('--size', o.size);
  if (o.packages !== undefined) args.push('--packages', o.packages);
  if (o.ssh) args.push('--ssh');
  if (o.out !== undefined) args.push('--out', o.out);
  return { script: 'scripts/images/build-debian.sh', args };
}
