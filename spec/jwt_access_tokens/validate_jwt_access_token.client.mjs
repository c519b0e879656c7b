// A third-party resource server validating our JWT access tokens with oauth4webapi's
// validateJwtAccessToken (RFC 9068 §4): keys from the server's jwks_uri, over loopback http.
import * as oauth from 'oauth4webapi';

const { issuer, jwksUri, token, audience } = JSON.parse(process.argv[2]);
const as = { issuer, jwks_uri: jwksUri };
const options = { [oauth.allowInsecureRequests]: true };
const request = (t) => new Request('http://rs.example/api/books', { headers: { authorization: `Bearer ${t}` } });

async function outcome(fn) {
  try {
    return { ok: await fn() };
  } catch (e) {
    return { error: e && (e.code || e.name), message: String(e && e.message) };
  }
}

const valid = await outcome(() => oauth.validateJwtAccessToken(as, request(token), audience, options));
const wrongAudience = await outcome(() => oauth.validateJwtAccessToken(as, request(token), 'https://other-api.example.com', options));
const [h, p, s] = token.split('.');
const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url')}.${s}`;
const forged = await outcome(() => oauth.validateJwtAccessToken(as, request(tampered), audience, options));
process.stdout.write(JSON.stringify({ valid, wrongAudience, forged }));
