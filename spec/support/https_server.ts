/**
 * A spec's own https server on a free loopback port, with the self-signed certificate of
 * spec/support/tls (CN localhost; SANs localhost, 127.0.0.1, ::1; generated once with
 * `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
 * -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
 * -addext basicConstraints=critical,CA:TRUE`). The server under test trusts it through
 * `oauthFetchTrustedCertificates: TEST_CERTIFICATE`, and reaches it only with
 * `oauthFetchAllowPrivateAddresses: true` (loopback is not a public address).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { RequestListener, Server as HttpServer } from 'node:http';
import { join } from 'node:path';
import { LoopbackServer } from './loopback_server';

export const TEST_CERTIFICATE = readFileSync(join(__dirname, 'tls', 'localhost.crt'), 'utf8');
const TEST_KEY = readFileSync(join(__dirname, 'tls', 'localhost.key'), 'utf8');

export class HttpsLoopbackServer {
  /** `https://localhost:<port>` once listening. */
  origin = '';
  readonly server: Server;
  private readonly loopback: LoopbackServer;

  constructor(handler: RequestListener) {
    this.server = createServer({ cert: TEST_CERTIFICATE, key: TEST_KEY }, handler);
    // https.Server is a tls.Server with the http.Server surface LoopbackServer uses (connection, listen, close).
    this.loopback = new LoopbackServer(this.server as unknown as HttpServer);
  }

  async listen(): Promise<string> {
    const http = await this.loopback.listen();
    this.origin = http.replace('http://127.0.0.1', 'https://localhost');
    return this.origin;
  }

  close(): Promise<void> {
    return this.loopback.close();
  }
}
