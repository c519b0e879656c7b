/** Conversions between database rows and domain values, for SQLite and PostgreSQL alike. */

/** A timestamp column read back: SQLite gives epoch milliseconds, PostgreSQL a Date. */
export function toDate(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v;
  if (typeof v === 'number') return new Date(v);
  if (typeof v === 'string') {
    const n = Number(v);
    return Number.isFinite(n) && v.trim() !== '' ? new Date(n) : new Date(v);
  }
  return null;
}

/** A space-separated list column (scopes, redirect URIs, methods); NULL stays null. */
export function toList(v: unknown): string[] | null {
  if (v === null || v === undefined) return null;
  return String(v).split(' ').filter((s) => s.length > 0);
}

export function fromList(v: readonly string[] | null | undefined): string | null {
  return v === null || v === undefined ? null : v.join(' ');
}

export function toStr(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

/** An id column: integers on both databases; PostgreSQL's bigint arrives as a string. */
export function toId(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}
