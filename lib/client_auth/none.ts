/**
 * `none` (RFC 7591 §2): a public client names itself with `client_id` only. It is accepted
 * only for applications registered with `none`; what a public client may then do is the
 * grant's decision (a code needs PKCE).
 */
import type { ClientAuthMethodDef } from '../feature';
import { invalidClient, loadClient } from './common';

export const none: ClientAuthMethodDef = {
  detect: (ctx) => ctx.params.client_id !== undefined,
  async authenticate(ctx) {
    const clientId = ctx.params.client_id;
    if (clientId === undefined) throw invalidClient(ctx, 'no_client_auth');
    return loadClient(ctx, clientId, 'none');
  },
};
