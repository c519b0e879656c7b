// Authenticates with private_key_jwt and client_secret_jwt (RFC 7523 §2.2) using oauth4webapi, and
// performs the JWT bearer grant (§2.1) with an assertion signed by the client, against the server under test.
// Input (argv[2], JSON): { as, resource, keyClient: { clientId, privateJwk }, strangerJwk, secretClient: { clientId, clientSecret }, grantClient: { clientId }, subject }.
import * as oauth from 'oauth4webapi';
import { callResource as getResource, expectError, insecure } from './client_support.mjs';
import { importJWK, SignJWT } from 'jose';

const input = JSON.parse(process.argv[2]);
const as = input.as;

async function importPrivate(jwk) {
  return { key: await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']), kid: jwk.kid };
}

async function clientCredentials(clientId, clientAuth) {
  const client = { client_id: clientId };
  const response = await oauth.clientCredentialsGrantRequest(as, client, clientAuth, { scope: 'books.read' }, insecure);
  return oauth.processClientCredentialsResponse(as, client, response);
}

const callResource = (accessToken) => getResource(input.resource, accessToken);

const privateKey = await importPrivate(input.keyClient.privateJwk);
const keyToken = await clientCredentials(input.keyClient.clientId, oauth.PrivateKeyJwt(privateKey));
const keyResource = await callResource(keyToken.access_token);
const stranger = await expectError(async () => clientCredentials(input.keyClient.clientId, oauth.PrivateKeyJwt(await importPrivate(input.strangerJwk))));

const secretToken = await clientCredentials(input.secretClient.clientId, oauth.ClientSecretJwt(input.secretClient.clientSecret));
const secretResource = await callResource(secretToken.access_token);

// RFC 7523 §2.1: the client asserts a user; the server verifies it with the client's registered keys.
const now = Math.floor(Date.now() / 1000);
const assertion = await new SignJWT({ jti: crypto.randomUUID() })
  .setProtectedHeader({ alg: 'ES256', kid: input.keyClient.privateJwk.kid, typ: 'JWT' })
  .setIssuer(input.grantClient.clientId)
  .setSubject(input.subject)
  .setAudience(as.issuer)
  .setIssuedAt(now)
  .setExpirationTime(now + 60)
  .sign(await importJWK(input.keyClient.privateJwk, 'ES256'));
const grantClient = { client_id: input.grantClient.clientId };
const grantResponse = await oauth.genericTokenEndpointRequest(as, grantClient, oauth.None(), 'urn:ietf:params:oauth:grant-type:jwt-bearer', { assertion }, insecure);
const grantToken = await oauth.processGenericTokenEndpointResponse(as, grantClient, grantResponse);
const grantResource = await callResource(grantToken.access_token);
const replay = await expectError(async () => {
  const again = await oauth.genericTokenEndpointRequest(as, grantClient, oauth.None(), 'urn:ietf:params:oauth:grant-type:jwt-bearer', { assertion }, insecure);
  return oauth.processGenericTokenEndpointResponse(as, grantClient, again);
});

const summary = (t) => ({ token_type: t.token_type, expires_in: t.expires_in, scope: t.scope, refresh_token: t.refresh_token ?? null });
console.log(JSON.stringify({
  privateKeyJwt: { token: summary(keyToken), resource: keyResource },
  stranger,
  clientSecretJwt: { token: summary(secretToken), resource: secretResource },
  grant: { token: summary(grantToken), resource: grantResource },
  replay,
}));
