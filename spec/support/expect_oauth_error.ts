/** Assertions on the JSON error channel (RFC 6749 §5.2): status, no-store headers and the exact body. */
import { expect } from '@jest/globals';
import type { Response } from 'supertest';

export function expectError(res: Response, status: number, body: Record<string, string>): void {
  expect(res.status).toBe(status);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers.pragma).toBe('no-cache');
  expect(res.body).toEqual(body);
}

/** The default body of a failed client authentication. */
export const INVALID_CLIENT = { error: 'invalid_client', error_description: 'Invalid client' };
