import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { ApiClient, ApiClientError, longPollMs } from './api-client.js';

const servers: (Server | NetServer)[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A local API that answers with `plan` in turn (a status, or 'reset' to drop the connection), then 200. */
async function flaky(plan: (number | 'reset' | 'hang')[]): Promise<{ url: string; hits: () => string[] }> {
  const hits: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    hits.push(req.method!);
    const step = plan.shift();
    if (step === 'reset') return req.socket.destroy();
    if (step === 'hang') return;
    res.writeHead(step ?? 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(step && step >= 400 ? { error: { code: 'unavailable', message: 'try later' } } : { ok: true, method: req.method }));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits };
}

describe('the API client', () => {
  it('retries an idempotent GET (and PUT, DELETE) that failed once with 503, with backoff', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const api = await flaky([503]);
      const client = new ApiClient({ url: api.url, retryBaseMs: 10 });
      await expect(client.call(method, '/x')).resolves.toMatchObject({ ok: true });
      expect(api.hits(), method).toEqual([method, method]);
    }
  });
  it('retries a GET whose connection was reset', async () => {
    const api = await flaky(['reset']);
    await expect(new ApiClient({ url: api.url, retryBaseMs: 10 }).call('GET', '/x')).resolves.toMatchObject({ ok: true });
    expect(api.hits()).toEqual(['GET', 'GET']);
  });
  it('never retries a POST or a PATCH: the first answer is the answer', async () => {
    for (const method of ['POST', 'PATCH']) {
      const api = await flaky([503]);
      const err = await new ApiClient({ url: api.url, retryBaseMs: 10 }).call(method, '/x', {}).catch((e: unknown) => e);
      expect(err, method).toBeInstanceOf(ApiClientError);
      expect((err as ApiClientError).status).toBe(503);
      expect(api.hits(), method).toEqual([method]);
    }
    const reset = await flaky(['reset']);
    await expect(new ApiClient({ url: reset.url, retryBaseMs: 10 }).call('POST', '/x', {})).rejects.toThrow();
    expect(reset.hits()).toEqual(['POST']);
  });
  it('gives up after its retries, returning the last answer', async () => {
    const api = await flaky([503, 503, 503, 503]);
    await expect(new ApiClient({ url: api.url, retries: 2, retryBaseMs: 10 }).call('GET', '/x')).rejects.toMatchObject({ status: 503 });
    expect(api.hits()).toHaveLength(3);
  });
  it('times out a request that gets no answer, naming the peer', async () => {
    const api = await flaky(['hang']);
    const t0 = Date.now();
    await expect(new ApiClient({ url: api.url, timeoutMs: 300, retries: 0 }).call('GET', '/x')).rejects.toThrow(/the central did not answer within 300 ms/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
  it('gives a long poll its wait on top of the timeout', () => {
    expect(longPollMs('/api/v1/runs/r?since=x&wait=60s')).toBe(60_000);
    expect(longPollMs('/api/v1/machines/m/wait?state=ready&timeout=1500ms')).toBe(1500);
    expect(longPollMs('/api/v1/sites')).toBe(0);
    expect(longPollMs('/x?wait=junk')).toBe(0);
  });
  it('says the central is not running when the connection is refused', async () => {
    const api = await flaky([]);
    const url = api.url;
    await new Promise((r) => servers.pop()!.close(r));
    await expect(new ApiClient({ url, retries: 1, retryBaseMs: 10 }).call('GET', '/x')).rejects.toThrow(/connection refused.*is it running/);
  });
});

describe('the API client behind a proxy (HTTP_PROXY / NO_PROXY)', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  /** A CONNECT proxy on loopback that records the targets it tunnelled to. */
  async function proxy(): Promise<{ url: string; targets: string[] }> {
    const targets: string[] = [];
    const server = createServer();
    server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      targets.push(req.url!);
      const [host, port] = req.url!.split(':');
      const up = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        up.write(head);
        up.pipe(client);
        client.pipe(up);
      });
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, targets };
  }

  it('goes through HTTP_PROXY, and not when NO_PROXY names the host', async () => {
    const api = await flaky([]);
    const p = await proxy();
    process.env.HTTP_PROXY = p.url;
    process.env.NO_PROXY = 'example.invalid';
    await expect(new ApiClient({ url: api.url }).call('GET', '/via-proxy')).resolves.toMatchObject({ ok: true });
    expect(p.targets).toEqual([api.url.replace('http://', '')]);
    process.env.NO_PROXY = '127.0.0.1';
    await expect(new ApiClient({ url: api.url }).call('GET', '/direct')).resolves.toMatchObject({ ok: true });
    expect(p.targets).toHaveLength(1);
  });
  it('a client told not to use a proxy (a BMC) goes direct', async () => {
    const api = await flaky([]);
    const p = await proxy();
    process.env.HTTP_PROXY = p.url;
    await expect(new ApiClient({ url: api.url, proxy: false }).call('GET', '/x')).resolves.toMatchObject({ ok: true });
    expect(p.targets).toEqual([]);
  });
});
