/**
 * The message a rejected promise gives, or undefined if it resolved. Not `rejects.toThrow`:
 * better-sqlite3's native binding keeps the error class of the first spec file of a jest worker,
 * whose `Error` is another realm's.
 */
export const failure = (p: PromiseLike<unknown>): Promise<string | undefined> =>
  Promise.resolve(p).then(
    () => undefined,
    (e: unknown) => String((e as { message?: unknown }).message),
  );
