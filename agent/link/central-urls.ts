/**
 * The central's URLs: one, or several replicas sharing one database (`--central https://a:8443,https://b:8443`,
 * env UNDERLAY_CENTRAL; recorded at join). Comma- or space-separated, trailing slashes dropped, duplicates
 * removed, each an http(s) URL.
 */
export function parseCentralUrls(value: string): string[] {
  const urls = [
    ...new Set(
      value
        .split(/[\s,]+/)
        .map((u) => u.trim().replace(/\/+$/, ''))
        .filter((u) => u !== ''),
    ),
  ];
  if (urls.length === 0) throw new Error('no central URL given');
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new Error(`not a URL: "${u}"`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error(`a central URL is http(s)://HOST:PORT, got "${u}"`);
  }
  return urls;
}

/**
 * Which URL the link dials next: the same one while it works; after a failure the next one in the list
 * (round robin), so a dead replica costs one attempt. `round` counts full passes over the list without a
 * working link: the backoff grows per round, not per URL, so the first pass is quick.
 */
export class CentralUrls {
  private i = 0;
  private failures = 0;

  constructor(readonly urls: string[]) {}

  get current(): string {
    return this.urls[this.i];
  }

  get round(): number {
    return Math.floor(this.failures / this.urls.length);
  }

  failed(): void {
    this.failures++;
    this.i = (this.i + 1) % this.urls.length;
  }

  succeeded(): void {
    this.failures = 0;
  }
}
