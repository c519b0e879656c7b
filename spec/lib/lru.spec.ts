import { describe, expect, it } from '@jest/globals';
import { lruSet, lruTouch } from '../../lib/lru';

describe('lib › lru', () => {
  it('keeps at most max entries, dropping the least recently set or touched first', () => {
    const map = new Map<string, number>();
    lruSet(map, 'a', 1, 2);
    lruSet(map, 'b', 2, 2);
    lruTouch(map, 'a', 1);
    lruSet(map, 'c', 3, 2);
    expect([...map]).toEqual([['a', 1], ['c', 3]]);
    lruSet(map, 'a', 4, 2);
    expect([...map]).toEqual([['c', 3], ['a', 4]]);
  });

  it('keeps nothing with a bound of 0', () => {
    const map = new Map<string, number>();
    lruSet(map, 'a', 1, 0);
    expect(map.size).toBe(0);
  });
});
