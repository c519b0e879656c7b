/** Builds `WWW-Authenticate` challenges (RFC 7235 §4.1, RFC 6750 §3). */

/** A quoted-string value: backslash-escaped, with characters outside RFC 6750's set replaced. */
function quoted(v: string): string {
  return `"${v.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?')}"`;
}

/** `Login` names the host's login page, for a 401 to a JSON request to /authorize (RFC 9110 §15.5.2). */
export function challenge(scheme: 'Basic' | 'Bearer' | 'Login', params: Record<string, string | undefined>): string {
  const parts = Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${quoted(v)}`);
  return parts.length === 0 ? scheme : `${scheme} ${parts.join(', ')}`;
}
