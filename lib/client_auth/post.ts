/** `client_secret_post` (RFC 6749 §2.3.1): `client_id` and `client_secret` in the body. */
import type { ClientAuthMethodDef } from '../feature';
import { invalidClient } from './common';
import { authenticateWithSecret } from './secret_guard';

export const clientSecretPost: ClientAuthMethodDef = {
  detect: (ctx) => ctx.params.client_secret !== undefined,
  async authenticate(ctx) {
    const clientId = ctx.params.client_id;
    const secret = ctx.params.client_secret;
    if (clientId === undefined || secret === undefined) throw invalidClient(ctx, 'no_client_auth');
    return authenticateWithSecret(ctx, clientId, secret, 'client_secret_post');
  },
};
