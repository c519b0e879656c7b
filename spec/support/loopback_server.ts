/**
 * A spec's own HTTP server on a free loopback port (a JWKS endpoint, a fake authorization
 * server), tracking its sockets so that `close()` never waits on a kept-alive connection.
 */
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export class LoopbackServer {
  origin = '';
  private readonly sockets = new Set<Socket>();

  constructor(private readonly server: Server) {
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  /** Listens on 127.0.0.1 and resolves with the origin, `http://127.0.0.1:<port>`. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.origin;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
