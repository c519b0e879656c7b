import { describe, expect, it } from '@jest/globals';
import { newClientId } from '../../lib/applications';

describe('oauth_base › client ids', () => {
  it('are 128 random bits in base64url that never start with "-" (a command line would read it as an option)', () => {
    const ids = Array.from({ length: 5000 }, () => newClientId());
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
