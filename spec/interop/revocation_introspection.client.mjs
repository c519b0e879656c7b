// oauth4webapi (ESM-only) as a real client of /introspect and /revoke, with client_secret_basic.
// Input (argv[2], JSON): { issuer, metadataUrl, clientId, clientSecret, refreshToken }.
// Prints one JSON object with what each call returned or threw.
import * as oauth from 'oauth4webapi';

const input = JSON.parse(process.argv[2]);
const options = { [oauth.allowInsecureRequests]: true };
const client = { client_id: input.clientId };
const auth = oauth.ClientSecretBasic(input.clientSecret);
const wrongAuth = oauth.ClientSecretBasic(`${input.clientSecret}-wrong`);

async function attempt(fn) {
  try {
    return { ok: await fn() };
  } catch (e) {
    if (e instanceof oauth.WWWAuthenticateChallengeError) {
      // A 401 with a challenge: the client reports the challenge; the RFC 6749 §5.2 body is still there.
      const body = await e.response.json();
      return { status: e.status, challenge: e.cause.map((c) => ({ scheme: c.scheme, parameters: c.parameters })), ...body };
    }
    return { error: e.error ?? e.code ?? e.message, status: e.status, error_description: e.error_description };
  }
}

const as = await oauth.processDiscoveryResponse(new URL(input.issuer), await fetch(input.metadataUrl));

const introspect = (token, a = auth, hint) =>
  attempt(async () => oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, a, token, { ...options, ...(hint && { additionalParameters: { token_type_hint: hint } }) })));
const revoke = (token, a = auth, hint) =>
  attempt(async () => (await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, a, token, { ...options, ...(hint && { additionalParameters: { token_type_hint: hint } }) }))) ?? null);

const tokens = await oauth.processClientCredentialsResponse(
  as,
  client,
  await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams({ scope: 'books.read' }), options),
);
const accessToken = tokens.access_token;

const out = {
  endpoints: { revocation_endpoint: as.revocation_endpoint, introspection_endpoint: as.introspection_endpoint },
  accessActive: await introspect(accessToken),
  refreshActive: await introspect(input.refreshToken, auth, 'refresh_token'),
  wrongSecret: await introspect(accessToken, wrongAuth),
  revokeWrongSecret: await revoke(accessToken, wrongAuth),
  revokeUnknown: await revoke('never-issued-token'),
  revokeRefresh: await revoke(input.refreshToken, auth, 'refresh_token'),
  refreshAfterRevoke: await introspect(input.refreshToken),
  accessStillActive: await introspect(accessToken),
  revokeAccess: await revoke(accessToken),
  accessAfterRevoke: await introspect(accessToken),
};
process.stdout.write(JSON.stringify(out));
