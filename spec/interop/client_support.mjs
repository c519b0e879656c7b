// Shared by the oauth4webapi client scripts: loopback http, a protected-resource call, and
// errors turned into JSON the spec can assert on.
import * as oauth from 'oauth4webapi';

/** oauth4webapi refuses http unless told; the specs run on loopback. */
export const insecure = { [oauth.allowInsecureRequests]: true };

/** GET the protected resource with the access token: its status and JSON body. */
export async function callResource(resource, accessToken) {
  const response = await oauth.protectedResourceRequest(accessToken, 'GET', new URL(resource), undefined, undefined, insecure);
  return { status: response.status, body: await response.json() };
}

/** Runs `fn`, expecting an OAuth error: `{ error: null }` when none was thrown. */
export async function expectError(fn) {
  try {
    await fn();
    return { error: null };
  } catch (e) {
    if (e instanceof oauth.ResponseBodyError) return { error: e.error, error_description: e.error_description, status: e.status };
    if (e instanceof oauth.WWWAuthenticateChallengeError) return { challenge: e.cause.map((c) => c.scheme), status: e.status };
    return { error: 'unexpected', message: String(e && e.message) };
  }
}
