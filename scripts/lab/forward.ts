#!/usr/bin/env node
/**
 * A byte-for-byte TCP ⇄ unix-socket forwarder, used by `underlay lab` to carry the agent's connection to
 * the central across the network-namespace boundary without any IP route between host and namespace
 * (the filesystem is shared across namespaces, so a unix socket is). TLS passes through unchanged.
 *
 *   node forward.js unix-to-tcp <socket> <host> <port>   # host side: listen on the socket, dial the central
 *   node forward.js tcp-to-unix <host> <port> <socket>   # namespace side: listen on TCP, dial the socket
 *
 * Prints "forwarding …" on stdout once listening. Exits on SIGTERM/SIGINT (removing its socket).
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { rmSync } from 'node:fs';

function pipe(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = () => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end).on('close', end);
  b.on('error', end).on('close', end);
}

function main(argv: string[]): void {
  const [mode, ...rest] = argv;
  if (mode === 'unix-to-tcp' && rest.length === 3) {
    const [socket, host, port] = rest as [string, string, string];
    rmSync(socket, { force: true });
    const server = createServer((c) => pipe(c, createConnection({ host, port: Number(port) })));
    server.listen(socket, () => process.stdout.write(`forwarding unix:${socket} -> tcp:${host}:${port}\n`));
    const stop = () => {
      server.close();
      process.exit(0);
    };
    process.once('SIGTERM', stop).once('SIGINT', stop);
    process.once('exit', () => rmSync(socket, { force: true }));
    return;
  }
  if (mode === 'tcp-to-unix' && rest.length === 3) {
    const [host, port, socket] = rest as [string, string, string];
    const server = createServer((c) => pipe(c, createConnection({ path: socket })));
    server.listen(Number(port), host, () => process.stdout.write(`forwarding tcp:${host}:${port} -> unix:${socket}\n`));
    const stop = () => {
      server.close();
      process.exit(0);
    };
    process.once('SIGTERM', stop).once('SIGINT', stop);
    return;
  }
  process.stderr.write('usage: forward.js unix-to-tcp <socket> <host> <port> | tcp-to-unix <host> <port> <socket>\n');
  process.exit(2);
}

main(process.argv.slice(2));
