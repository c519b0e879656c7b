/**
 * Runs a real third-party client (oauth4webapi, ESM-only) in its own Node process against an
 * app listening on loopback, and returns what the client script prints as JSON.
 */
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Express } from 'express';

export async function listen(app: Express): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Runs `node script` with `input` as JSON in argv[2]; resolves with the JSON it prints. */
export function runClient<T = unknown>(script: string, input: unknown, timeoutMs = 20000): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, JSON.stringify(input)], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${script} failed: ${err.message}\n${stderr}\n${stdout}`));
      try {
        resolve(JSON.parse(stdout) as T);
      } catch {
        reject(new Error(`${script} printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
  });
}
