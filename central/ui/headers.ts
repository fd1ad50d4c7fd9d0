/**
 * Headers on every page and asset of the console and /docs: scripts and connections only to this
 * origin (an injected script could not send anything elsewhere), no framing, no referrer. Swagger UI
 * sets inline styles and data: images; the console needs neither.
 */
export function pageHeaders(kind: 'console' | 'docs'): Record<string, string> {
  const style = kind === 'docs' ? "'self' 'unsafe-inline'" : "'self'";
  return {
    'content-security-policy': `default-src 'none'; script-src 'self'; style-src ${style}; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  };
}
