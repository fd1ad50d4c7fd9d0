import { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { existsSync } from 'node:fs';
import sodium from 'libsodium-wrappers';
import { AgentJoinResponse } from '../../shared/api/agents.js';
import { parseJoinToken } from '../../shared/api/join-token.js';
import { makeCsr } from '../../shared/pki/csr.js';
import { ApiClient, ApiClientError } from '../../shared/client/api-client.js';
import { ensureStateDir, saveJson, type AgentIdentity } from '../state/state-dir.js';
import { parseCentralUrls } from '../link/central-urls.js';
import { fetchPinnedCa } from './verify-central.js';
import { AGENT_VERSION } from '../version.js';

export interface JoinOptions {
  /** The central's URL(s); tried before those the join token carries. Optional when the token carries some. */
  central?: string;
  token: string;
  state: string;
  name?: string;
  /** Replace an existing identity in the state dir. */
  force?: boolean;
}

/** The first URL for which `probe` works; the errors of all when none does. A fingerprint mismatch is never skipped over. */
async function firstReachable(urls: string[], probe: (u: string) => Promise<string>): Promise<{ url: string; caPem: string }> {
  const errors: string[] = [];
  for (const url of urls) {
    try {
      return { url, caPem: await probe(url) };
    } catch (e) {
      if (urls.length === 1 || /fingerprint|man in the middle|pinned CA|must be https/i.test((e as Error).message)) throw e;
      errors.push(`${url}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no central answered: ${errors.join('; ')}`);
}

export async function joinCentral(opts: JoinOptions): Promise<AgentIdentity> {
  const { bearer, caFingerprint, centralUrls } = parseJoinToken(opts.token);
  const paths = ensureStateDir(opts.state);
  if (existsSync(paths.identity) && !opts.force) {
    throw new Error(`${paths.dir} already holds a joined agent identity; use another --state dir or --force to replace it`);
  }
  // One URL or several replicas' (recorded as given: the link tries them in turn).
  const given = [opts.central ?? '', ...centralUrls].join(',');
  if (given.replace(/[\s,]/g, '') === '') throw new Error('--central is required: this join token carries no central URLs');
  const urls = parseCentralUrls(given);
  const centralUrl = urls.join(',');
  // 1. Verify the central before sending anything (the token is a secret): the first replica that answers.
  const { url: joinUrl, caPem } = await firstReachable(urls, (u) => fetchPinnedCa(u, caFingerprint));
  // 2. Keys made here.
  const name = opts.name ?? hostname();
  const { keyPem, csrPem } = makeCsr(`agent-candidate:${name}`);
  await sodium.ready;
  const seal = sodium.crypto_box_keypair();
  // 3. Join over TLS pinned to that CA.
  const client = new ApiClient({ url: joinUrl, token: bearer, ca: caPem });
  let res: unknown;
  try {
    res = await client.call('POST', '/api/v1/agents/join', {
      csr: csrPem,
      sealPublicKey: Buffer.from(seal.publicKey).toString('base64'),
      name,
      agentVersion: AGENT_VERSION,
    });
  } catch (e) {
    if (e instanceof ApiClientError && e.status === 401) throw new Error(`the central refused the join token: ${e.message}`);
    if (e instanceof ApiClientError && e.status === 403) throw new Error(`the token is not an agent-join token: ${e.message}`);
    throw e;
  }
  const joined = AgentJoinResponse.parse(res);
  if (new X509Certificate(joined.caCertificate).fingerprint256 !== new X509Certificate(caPem).fingerprint256) throw new Error('the central answered with a different CA than the pinned one; refusing');
  saveJson(paths.sealKey, { publicKey: Buffer.from(seal.publicKey).toString('base64'), privateKey: Buffer.from(seal.privateKey).toString('base64') });
  const { writeFileDurableSync } = await import('../../shared/fs/durable.js');
  writeFileDurableSync(paths.tlsKey, keyPem, 0o600);
  writeFileDurableSync(paths.tlsCert, joined.certificate, 0o644);
  writeFileDurableSync(paths.ca, caPem, 0o644);
  const identity: AgentIdentity = {
    agentId: joined.agent.id,
    site: joined.agent.site,
    centralUrl,
    signingPublicKey: joined.signingPublicKey,
    caFingerprint,
    joinedAt: new Date().toISOString(),
    name,
  };
  saveJson(paths.identity, identity, 0o600);
  return identity;
}
