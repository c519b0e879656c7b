/**
 * Hands an error to the logger and the `onError` hook, with the request's secrets removed.
 * The logger gets one line per error, and server errors that repeat (an outage fails every
 * request the same way) at most once per interval with a count; `onError` gets every error.
 */
import type { OAuthContext } from './context';
import type { OAuthError } from './errors';
import { RepeatLimiter, errorMeta, presentedClientId, repeatKey, requestSecrets } from './log';
import type { Runtime } from './runtime';

const limiters = new WeakMap<Runtime, RepeatLimiter>();

export function report(rt: Runtime, ctx: OAuthContext | undefined, err: OAuthError): void {
  try {
    const secrets = ctx ? requestSecrets(ctx.params, ctx.req.headers.authorization) : [];
    const path = ctx ? ctx.req.originalUrl.split('?')[0] ?? '' : '';
    // Which client: `invalid_client` is one message on the wire (RFC 6749 §5.2), so the log is
    // where a host learns which client id was refused, and why (the reason).
    const clientId = ctx ? presentedClientId({ params: ctx.params, authorization: ctx.req.headers.authorization, authenticated: ctx.application?.clientId }) : undefined;
    const meta = errorMeta(err, path, secrets, clientId);
    const message = `${err.code} (${err.reason ?? 'unknown'})`;
    if (err.status >= 500) {
      // Client errors stay one line each at info level: each is one request's fact, and a host
      // that records them (to spot a guessing client, say) wants every one. The default logger
      // drops info unless `oauthLogLevel: 'info'`, so a flood of refusals is quiet by default.
      let limiter = limiters.get(rt);
      if (!limiter) limiters.set(rt, (limiter = new RepeatLimiter()));
      const verdict = limiter.admit(repeatKey(err, meta), clock(ctx));
      if (!verdict.log) return;
      if (verdict.suppressed > 0) {
        meta.repeats = verdict.suppressed;
        rt.logger.error(`${message} (${verdict.suppressed} more since ${new Date(verdict.since).toISOString()})`, meta);
      } else rt.logger.error(message, meta);
    } else rt.logger.info(message, meta);
  } catch {
    /* a failing logger must not turn a client error into a crash */
  } finally {
    if (rt.onError) {
      Promise.resolve()
        .then(() => rt.onError!(ctx, err))
        .catch(() => undefined);
    }
  }
}

/** The request's clock (`now`, overridable), so a spec can move time; the wall clock without one. */
function clock(ctx: OAuthContext | undefined): number {
  try {
    if (ctx) return ctx.now().getTime();
  } catch {
    /* an overridden `now` that throws: the wall clock will do for logging */
  }
  return Date.now();
}
