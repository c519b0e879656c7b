/**
 * Grant fixtures through the store API, hashed exactly as in production (`sha256`, the default
 * `generateTokenHash`), for specs that need tokens without running the authorization code flow.
 */
import { Store, type Grant } from '../../lib/store';
import { resolveSchema } from '../../lib/store/schema';
import type { TestApp } from './build_app';
import { insertGrant } from './token_fixtures';

export interface FixtureGrant {
  grant: Grant;
  accessToken: string;
  refreshToken: string;
}

export interface FixtureGrantInput {
  applicationId: number;
  scopes?: string[];
  accountId?: string | null;
  /** Absolute expiry of the access token; default: an hour from now. */
  expiresIn?: Date;
  /** Absolute expiry of the refresh token; default: 30 days from now. */
  refreshTokenExpiresIn?: Date | null;
  revokedAt?: Date;
}

/** The store of a test app, under the schema its options configure (table/column renames included). */
export function storeOf(t: TestApp, options: Record<string, unknown> = {}): Store {
  return new Store(t.db, resolveSchema(options));
}

/** Inserts an authorization-code grant already exchanged for an access and a refresh token. */
export async function createGrant(t: TestApp, input: FixtureGrantInput, options: Record<string, unknown> = {}): Promise<FixtureGrant> {
  const issued = await insertGrant(
    t,
    {
      applicationId: input.applicationId,
      accountId: input.accountId,
      scopes: input.scopes ?? ['books.read', 'books.write'],
      expiresIn: input.expiresIn,
      refreshTokenExpiresIn: input.refreshTokenExpiresIn,
    },
    options,
  );
  if (input.revokedAt) await storeOf(t, options).grants.revoke(issued.grant.id, input.revokedAt);
  return { grant: issued.grant, accessToken: issued.accessToken!, refreshToken: issued.refreshToken! };
}

/** The grant as stored now. */
export async function reloadGrant(t: TestApp, id: number, options: Record<string, unknown> = {}): Promise<Grant> {
  const grant = await storeOf(t, options).grants.findById(id);
  if (!grant) throw new Error(`grant ${id} not found`);
  return grant;
}
