/** Hands an error to the logger and the `onError` hook, with the request's secrets removed. */
import type { OAuthContext } from './context';
import type { OAuthError } from './errors';
import { errorMeta, requestSecrets } from './log';
import type { Runtime } from './runtime';

export function report(rt: Runtime, ctx: OAuthContext | undefined, err: OAuthError): void {
  const secrets = ctx ? requestSecrets(ctx.params, ctx.req.headers.authorization) : [];
  const path = ctx ? ctx.req.originalUrl.split('?')[0] ?? '' : '';
  try {
    if (err.status >= 500) rt.logger.error(`${err.code} (${err.reason ?? 'unknown'})`, errorMeta(err, path, secrets));
    else rt.logger.info(`${err.code} (${err.reason ?? 'unknown'})`, errorMeta(err, path, secrets));
  } catch {
    /* a failing logger must not turn a client error into a crash */
  }
  if (rt.onError) {
    Promise.resolve()
      .then(() => rt.onError!(ctx, err))
      .catch(() => undefined);
  }
}
