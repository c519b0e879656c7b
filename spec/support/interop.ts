/**
 * Runs a real third-party client (oauth4webapi, ESM-only) in its own Node process against an
 * app listening on loopback, and returns what the client script prints as JSON.
 */
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import session from 'express-session';
import type { Express, NextFunction, Request, Response } from 'express';
import type { OAuthRouter } from '../../lib';
import { MOUNT } from './build_app';

declare module 'express-session' {
  interface SessionData {
    userId?: string;
  }
}

/** The host of an interop spec: a session, a login page that logs "alice" in (then `onLogin`), Passport-style `req.user`. */
export function sessionLogin(app: Express, onLogin?: (req: Request) => void): void {
  app.use(session({ secret: 'interop-session-secret', resave: false, saveUninitialized: false }));
  app.use(function sessionUser(req: Request, _res: Response, next: NextFunction) {
    if (req.session.userId) (req as Request & { user?: { id: string } }).user = { id: req.session.userId };
    next();
  });
  app.get('/login', function testLogin(req: Request, res: Response) {
    const returnTo = typeof req.query.return_to === 'string' && /^\/(?!\/)/.test(req.query.return_to) ? req.query.return_to : '/';
    req.session.userId = 'alice';
    onLogin?.(req);
    res.redirect(302, returnTo);
  });
}

/** `sessionLogin`, plus RFC 8414 §3.1: under a path, the well-known URI goes between the host and the path. */
export function interopHost(app: Express, auth: OAuthRouter): void {
  sessionLogin(app);
  if (MOUNT) app.use(auth.wellKnown({ mountPath: MOUNT }));
}

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
