import type { Response } from 'express';

/** RFC 6749 §5.1: token responses (and errors) must not be cached. */
export function setNoCache(res: Response): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
}
