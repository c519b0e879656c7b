import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineFeature, method, value } from '../../lib/feature';
import { FEATURES } from '../../lib/features';
import { OPTIONS_DOC, generateOptionsDoc } from '../../scripts/generate_docs';

describe('lib › docs', () => {
  it('docs/options.md is up to date with the feature registry (run `npm run docs`)', () => {
    const committed = readFileSync(join(__dirname, '..', '..', OPTIONS_DOC), 'utf8');
    expect(committed).toBe(generateOptionsDoc(FEATURES));
  });

  it('lists every value, method, hook and route of every feature with its default and doc', () => {
    const f = defineFeature({
      id: 'demo',
      doc: 'A demo | feature.',
      values: { demoLimit: value(5, 'How many | at most.'), demoName: value<string | null>(null, 'A name.', 'nullable-string') },
      methods: { demoCheck: method((): boolean => true, 'Checks things.') },
      hooks: ['beforeDemo'],
      routes: [{ name: 'device_code', method: 'post', handler: async () => undefined }],
    });
    const doc = generateOptionsDoc({ demo: f });
    expect(doc).toContain('## demo\n\nA demo \\| feature.\n');
    expect(doc).toContain('| `demoLimit` | value | `5` | How many \\| at most. |');
    expect(doc).toContain('| `demoName` | value | `null` | A name. |');
    expect(doc).toContain('| `demoCheck` | method | (built in) | Checks things. |');
    expect(doc).toContain('| `beforeDemo` | hook | — |');
    expect(doc).toContain('| `deviceCodeRoute` | route | `"device-code"` | Path of the `device_code` route (POST), joined to the mount path. |');
    expect(doc).toContain('| `beforeDeviceCodeRoute` | hook | — |');
    expect(generateOptionsDoc({ demo: f })).toBe(doc);
  });

  it('documents every option name the registry accepts', () => {
    const doc = generateOptionsDoc(FEATURES);
    for (const f of Object.values(FEATURES)) {
      for (const name of [...Object.keys(f.values), ...Object.keys(f.methods), ...f.hooks]) expect(doc).toContain(`| \`${name}\` |`);
    }
  });
});
