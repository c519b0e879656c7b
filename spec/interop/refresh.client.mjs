// Refreshes tokens with oauth4webapi (a certified OAuth client) against the server under test.
// Input (argv[2], JSON): { as, clientId, clientSecret?, refreshToken, resource, scope? }. Prints JSON.
import * as oauth from 'oauth4webapi';
import { callResource as getResource, expectError, insecure } from './client_support.mjs';

const input = JSON.parse(process.argv[2]);
const as = input.as;
const client = { client_id: input.clientId };
const clientAuth = input.clientSecret ? oauth.ClientSecretBasic(input.clientSecret) : oauth.None();

async function refreshWith(refreshToken, scope) {
  const parameters = scope ? new URLSearchParams({ scope }) : undefined;
  const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshToken, { ...insecure, additionalParameters: parameters });
  return oauth.processRefreshTokenResponse(as, client, response);
}

const callResource = (accessToken) => getResource(input.resource, accessToken);

const first = await refreshWith(input.refreshToken, input.scope);
const resource = await callResource(first.access_token);
const second = await refreshWith(first.refresh_token);
const reuse = await expectError(() => refreshWith(input.refreshToken));
const afterReuse = await expectError(() => refreshWith(second.refresh_token));

console.log(JSON.stringify({
  first: { token_type: first.token_type, expires_in: first.expires_in, scope: first.scope, rotated: typeof first.refresh_token === 'string' && first.refresh_token !== input.refreshToken },
  resource,
  second: { token_type: second.token_type, scope: second.scope, rotated: second.refresh_token !== first.refresh_token },
  reuse,
  afterReuse,
}));
