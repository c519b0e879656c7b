/** `client_secret_post` (RFC 6749 §2.3.1): `client_id` and `client_secret` in the body. */
import type { ClientAuthMethodDef } from '../feature';
import type { Application } from '../store';
import { invalidClient, loadClient } from './common';

export const clientSecretPost: ClientAuthMethodDef = {
  detect: (ctx) => ctx.params.client_secret !== undefined,
  async authenticate(ctx) {
    const clientId = ctx.params.client_id;
    const secret = ctx.params.client_secret;
    if (clientId === undefined || secret === undefined) throw invalidClient(ctx, 'no_client_auth');
    const app = await loadClient(ctx, clientId, 'client_secret_post');
    const methods = ctx.methods as unknown as { secretMatches(app: Application, secret: string): Promise<boolean> };
    if (!(await methods.secretMatches(app, secret))) throw invalidClient(ctx, 'bad_client_secret');
    return app;
  },
};
