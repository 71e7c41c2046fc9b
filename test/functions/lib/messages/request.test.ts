import { describe, expect, it } from 'vitest';
import { ATLAS_REGIONS } from '#atlas/types.ts';
import { InvalidRequestError } from '#lib/errors.ts';
import {
  MAX_BODY_BYTES,
  MAX_CORRELATION_ID_CHARS,
  naturalKey,
  parseRequest,
  quoteValue,
} from '#messages/request.ts';

const valid = {
  requestId: 'orders-svc:7f3c',
  groupId: '5f1e2d3c4b5a69788796a5b4',
  cloudProvider: 'AWS',
  regionName: 'US_EAST_1',
};

const rejectionOf = (body: string): InvalidRequestError => {
  try {
    parseRequest(body);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    return error as InvalidRequestError;
  }
  throw new Error('expected the body to be rejected');
};
const issuesOf = (body: string): string[] => rejectionOf(body).issues;

describe('parseRequest', () => {
  it('fills in the defaults of a minimal create request', () => {
    expect(parseRequest(JSON.stringify(valid))).toEqual({ ...valid, action: 'create', profile: 'default' });
  });

  it('accepts a delete with a VPC region and a profile', () => {
    const body = { ...valid, action: 'delete', vpcRegionName: 'EU_WEST_1', profile: 'team_a-1' };
    expect(parseRequest(JSON.stringify(body))).toEqual(body);
  });

  it('rejects an unknown field such as a mis-cased regionname, naming it', () => {
    expect(issuesOf(JSON.stringify({ ...valid, regionname: 'US_EAST_1' }))).toContain(
      'unknown field(s): regionname',
    );
  });

  it('names an unknown field before the problems it probably caused', () => {
    const { regionName: _, ...rest } = valid;
    const issues = issuesOf(JSON.stringify({ ...rest, regionname: 'US_EAST_1' }));
    expect(issues[0]).toBe('unknown field(s): regionname');
    expect(issues[1]).toMatch(/^regionName: /);
  });

  it('names every bad field and what is wrong with it', () => {
    const issues = issuesOf(
      JSON.stringify({
        ...valid,
        groupId: 'ABC',
        cloudProvider: 'GCP',
        regionName: 'MARS_1',
        action: 'upsert',
      }),
    );
    expect(issues).toHaveLength(4);
    expect(issues.find((i) => i.startsWith('groupId:'))).toMatch(/24-character lowercase hex/);
    expect(issues.find((i) => i.startsWith('cloudProvider:'))).toMatch(/AWS/);
    expect(issues.find((i) => i.startsWith('regionName:'))).toMatch(/got "MARS_1"/);
    expect(issues.find((i) => i.startsWith('action:'))).toBeDefined();
  });

  it('rejects a missing requestId and a requestId with forbidden characters', () => {
    const { requestId: _, ...missing } = valid;
    expect(issuesOf(JSON.stringify(missing))[0]).toMatch(/^requestId:/);
    expect(issuesOf(JSON.stringify({ ...valid, requestId: 'a b' }))[0]).toMatch(/^requestId: must be 1-128/);
    expect(issuesOf(JSON.stringify({ ...valid, requestId: 'x'.repeat(129) }))[0]).toMatch(/^requestId:/);
  });

  it('rejects a profile outside [A-Za-z0-9_-]{1,64}', () => {
    expect(issuesOf(JSON.stringify({ ...valid, profile: '../prod' }))[0]).toMatch(/^profile:/);
  });

  it('rejects malformed JSON and says so', () => {
    expect(issuesOf('{"requestId":')[0]).toMatch(/^body is not valid JSON/);
  });

  it('rejects a body that is not an object', () => {
    expect(issuesOf('[1,2]')[0]).toMatch(/^body: /);
    expect(issuesOf('"hello"')[0]).toMatch(/^body: /);
  });

  it('rejects a body over 16 KiB before parsing it', () => {
    const big = JSON.stringify({ ...valid, pad: 'x'.repeat(MAX_BODY_BYTES) });
    expect(issuesOf(big)).toEqual([
      `body is ${Buffer.byteLength(big)} bytes; the limit is ${MAX_BODY_BYTES}`,
    ]);
  });

  it('keeps the requestId of an invalid request for correlation', () => {
    try {
      parseRequest(JSON.stringify({ ...valid, regionName: 'NOWHERE' }));
      expect.unreachable();
    } catch (error) {
      expect((error as InvalidRequestError).requestId).toBe(valid.requestId);
    }
  });
});

describe('parseRequest: each field', () => {
  const REQUEST_ID_RULE = 'requestId: must be 1-128 characters of A-Z a-z 0-9 . _ : -';

  it.each(['a', 'x'.repeat(128), 'A-Z.a_z:0-9'])('accepts the requestId %s', (requestId) => {
    expect(parseRequest(JSON.stringify({ ...valid, requestId })).requestId).toBe(requestId);
  });

  it.each([
    ['an empty one', '', '(got 0 characters)'],
    ['a space first', ' abc', '(got " " at position 1)'],
    ['a slash last', 'abc/', '(got "/" at position 4)'],
    ['a newline last', 'abc\n', '(got "\\n" at position 4)'],
    ['128 characters with one forbidden', `${'x'.repeat(127)}#`, '(got "#" at position 128)'],
    ['a single forbidden character', '#', '(got "#" at position 1)'],
    ['an astral character', 'a\u{1f600}', '(got "\\u{1f600}" at position 2)'],
  ])('rejects a requestId with %s, saying what it got', (_, requestId, got) => {
    expect(issuesOf(JSON.stringify({ ...valid, requestId }))).toEqual([`${REQUEST_ID_RULE} ${got}`]);
  });

  it('rejects a missing requestId, naming it', () => {
    const { requestId: _, ...missing } = valid;
    expect(issuesOf(JSON.stringify(missing))).toEqual([
      'requestId: Invalid input: expected string, received undefined',
    ]);
  });

  it.each([
    ['upper case', '5F1E2D3C4B5A69788796A5B4'],
    ['23 characters', '5f1e2d3c4b5a69788796a5b'],
    ['25 characters', '5f1e2d3c4b5a69788796a5b4a'],
    ['a non-hex letter', '5f1e2d3c4b5a69788796a5bg'],
    ['a prefix', 'x5f1e2d3c4b5a69788796a5b4'],
    ['a newline after it', '5f1e2d3c4b5a69788796a5b4\n'],
  ])('rejects a groupId with %s', (_, groupId) => {
    expect(issuesOf(JSON.stringify({ ...valid, groupId }))).toEqual([
      'groupId: must be a 24-character lowercase hex Atlas project id',
    ]);
  });

  it.each(['a', 'p'.repeat(64), 'Team_A-1'])('accepts the profile %s', (profile) => {
    expect(parseRequest(JSON.stringify({ ...valid, profile })).profile).toBe(profile);
  });

  it.each(['', 'p'.repeat(65), 'team.a', ' team', 'team '])('rejects the profile "%s"', (profile) => {
    expect(issuesOf(JSON.stringify({ ...valid, profile }))).toEqual([
      'profile: must be 1-64 characters of A-Z a-z 0-9 _ -',
    ]);
  });

  it('accepts every Atlas region, as the bucket region and as the VPC region', () => {
    for (const region of ATLAS_REGIONS) {
      const body = { ...valid, regionName: region, vpcRegionName: region };
      expect(parseRequest(JSON.stringify(body))).toMatchObject(body);
    }
  });

  it('lists the Atlas regions when a region is missing or wrong', () => {
    const { regionName: _, ...missing } = valid;
    const regions = ATLAS_REGIONS.join(', ');
    expect(issuesOf(JSON.stringify(missing))).toEqual([
      `regionName: must be one of the Atlas regions (${regions}), got undefined`,
    ]);
    expect(issuesOf(JSON.stringify({ ...valid, vpcRegionName: 'us_east_1' }))).toEqual([
      `vpcRegionName: must be one of the Atlas regions (${regions}), got "us_east_1"`,
    ]);
  });

  it('names several unknown fields in one issue, quoting those that are not plain', () => {
    const body = { ...valid, a: 1, 'has space': 2, ['k'.repeat(65)]: 3, ['k'.repeat(64)]: 4 };
    expect(issuesOf(JSON.stringify(body))).toEqual([
      `unknown field(s): a, "has space", "${'k'.repeat(64)}…", ${'k'.repeat(64)}`,
    ]);
  });

  it('names the whole body when it is not an object', () => {
    expect(issuesOf('null')).toEqual(['body: Invalid input: expected object, received null']);
  });

  it('accepts a body of exactly 16 KiB and rejects one byte more, counted in UTF-8 bytes', () => {
    const json = JSON.stringify(valid);
    const exact = json.padEnd(MAX_BODY_BYTES, ' ');
    expect(parseRequest(exact)).toMatchObject(valid);
    expect(issuesOf(`${exact} `)[0]).toBe(
      `body is ${MAX_BODY_BYTES + 1} bytes; the limit is ${MAX_BODY_BYTES}`,
    );
    // 6,000 characters, 18,000 bytes
    const wide = JSON.stringify({ ...valid, pad: '\u20ac'.repeat(6_000) });
    expect(wide.length).toBeLessThan(MAX_BODY_BYTES);
    expect(issuesOf(wide)[0]).toBe(
      `body is ${Buffer.byteLength(wide)} bytes; the limit is ${MAX_BODY_BYTES}`,
    );
  });

  it('keeps the parser error as the cause of a body that is not JSON', () => {
    const error = rejectionOf('{"requestId":');
    expect(error.cause).toBeInstanceOf(SyntaxError);
    expect(error.issues[0]).toBe(`body is not valid JSON (${(error.cause as Error).message})`);
  });

  it('reports the broken requestId of a body that is not JSON after the parse error', () => {
    const error = rejectionOf('{"requestId": "a b", "groupId": oops');
    expect(error.issues).toHaveLength(2);
    expect(error.issues[1]).toBe(`${REQUEST_ID_RULE} (got " " at position 2)`);
    expect(error.requestId).toBe('a b');
  });

  it('carries a one-character requestId of an invalid request', () => {
    expect(rejectionOf(JSON.stringify({ ...valid, requestId: 'a', groupId: 'x' })).requestId).toBe('a');
  });

  it('names only the body when a body without a requestId is oversized or not JSON', () => {
    const { requestId: _, ...rest } = valid;
    const big = JSON.stringify({ ...rest, pad: 'x'.repeat(MAX_BODY_BYTES) });
    expect(issuesOf(big)).toEqual([
      `body is ${Buffer.byteLength(big)} bytes; the limit is ${MAX_BODY_BYTES}`,
    ]);
    expect(issuesOf('{"requestId": 7, oops')).toHaveLength(1);
  });

  it('carries no requestId for an empty one, which breaks the contract', () => {
    const error = rejectionOf(JSON.stringify({ ...valid, requestId: '' }));
    expect(error.requestId).toBeUndefined();
  });
});

describe('quoteValue', () => {
  it('quotes a value as JSON, shortening one longer than the limit', () => {
    expect(quoteValue('abc')).toBe('"abc"');
    expect(quoteValue('x'.repeat(64))).toBe(`"${'x'.repeat(64)}"`);
    expect(quoteValue('x'.repeat(65))).toBe(`"${'x'.repeat(64)}…"`);
    expect(quoteValue('abcdef', 3)).toBe('"abc…"');
    expect(quoteValue(42)).toBe('42');
    expect(quoteValue(undefined)).toBe('undefined');
  });

  it('escapes every character outside printable ASCII, so none hides', () => {
    expect(quoteValue('\u0000\u00e9\u200b\u{1f600}~')).toBe('"\\u0000\\u00e9\\u200b\\u{1f600}~"');
    expect(quoteValue('\uffff\u{10000}')).toBe('"\\uffff\\u{10000}"');
  });
});

describe('parseRequest: strict JSON', () => {
  it('rejects a duplicate top-level key instead of letting the last value win, naming it', () => {
    const body = `{"requestId":"dup-1","groupId":"${valid.groupId}","cloudProvider":"AWS","regionName":"NOPE","regionName":"US_EAST_1"}`;
    expect(issuesOf(body)).toEqual(['regionName: duplicate key "regionName"']);
  });

  it('rejects a duplicate key nested at any depth, with its path', () => {
    const body = JSON.stringify({ ...valid, x: [{}, { y: { a: 1 } }] }).replace('"a":1', '"a":1,"a":2');
    expect(issuesOf(body)).toContain('x.1.y.a: duplicate key "a"');
  });

  it('names 10 duplicate keys without a summary, and says how many more there are past 10', () => {
    const withDuplicates = (n: number) =>
      JSON.stringify(valid).replace('}', `,"d":{${Array.from({ length: n + 1 }, () => '"a":1').join(',')}}}`);

    expect(issuesOf(withDuplicates(10))).toEqual([
      ...Array(10).fill('d.a: duplicate key "a"'),
      'unknown field(s): d',
    ]);
    expect(issuesOf(withDuplicates(11)).slice(9)).toEqual([
      'd.a: duplicate key "a"',
      'and 1 more duplicate keys',
      'unknown field(s): d',
    ]);
  });

  it("quotes a key in a duplicate's path that is not a plain name", () => {
    const body = JSON.stringify({ ...valid, 'a b': { c: 1 } }).replace('"c":1', '"c":1,"c":2');
    expect(issuesOf(body)).toContain('"a b".c: duplicate key "c"');
  });

  it('names at most 10 duplicate keys, with long keys shortened, so a reason stays small', () => {
    const long = 'k'.repeat(4_000);
    const inner = Array.from({ length: 500 }, () => '"a":1').join(',');
    const body = JSON.stringify(valid).replace('}', `,"${long}":{${inner}}}`);

    const issues = issuesOf(body);

    expect(issues.slice(0, 10)).toEqual(Array(10).fill(`"${'k'.repeat(32)}…".a: duplicate key "a"`));
    expect(issues[10]).toBe('and 489 more duplicate keys');
    expect(issues.join('; ').length).toBeLessThan(10_000);
  });

  it('compares keys by value, so an escaped spelling of a key is a duplicate too', () => {
    const body = JSON.stringify(valid).replace('}', ',"\\u0072egionName":"EU_WEST_1"}');
    expect(issuesOf(body)).toEqual(['regionName: duplicate key "regionName"']);
  });

  it('rejects prototype keys as unknown fields without polluting any prototype', () => {
    const proto = `{"__proto__":{"polluted":true},${JSON.stringify(valid).slice(1)}`;
    const ctor = `{"constructor":{"prototype":{"polluted":true}},${JSON.stringify(valid).slice(1)}`;

    expect(issuesOf(proto)).toEqual(['unknown field(s): __proto__']);
    expect(issuesOf(ctor)).toEqual(['unknown field(s): constructor']);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('shows a homoglyph or an invisible character in a region as an escape', () => {
    expect(issuesOf(JSON.stringify({ ...valid, regionName: 'U\u0405_EAST_1' }))[0]).toMatch(
      /^regionName: .*got "U\\u0405_EAST_1"$/,
    );
    expect(issuesOf(JSON.stringify({ ...valid, regionName: 'US_EAST_1\u200b' }))[0]).toMatch(
      /got "US_EAST_1\\u200b"$/,
    );
  });
});

describe('parseRequest: the requestId of a rejected body', () => {
  it('reports a 129-character requestId as the reason and keeps it whole for correlation', () => {
    const requestId = 'x'.repeat(129);
    const error = rejectionOf(JSON.stringify({ ...valid, requestId }));
    expect(error.issues).toEqual([
      'requestId: must be 1-128 characters of A-Z a-z 0-9 . _ : - (got 129 characters)',
    ]);
    expect(error.requestId).toBe(requestId);
  });

  it('names the first forbidden character of a requestId, escaped', () => {
    const error = rejectionOf(JSON.stringify({ ...valid, requestId: 'ok\r\nforged' }));
    expect(error.issues).toEqual([
      'requestId: must be 1-128 characters of A-Z a-z 0-9 . _ : - (got "\\r" at position 3)',
    ]);
    expect(error.requestId).toBe('ok\r\nforged');
  });

  it('reads the requestId of an oversized body, wherever it is in the body', () => {
    const { requestId: _, ...rest } = valid;
    const big = JSON.stringify({ ...rest, pad: 'x'.repeat(MAX_BODY_BYTES), requestId: 'big:1' });
    const error = rejectionOf(big);
    expect(error.issues).toEqual([`body is ${Buffer.byteLength(big)} bytes; the limit is ${MAX_BODY_BYTES}`]);
    expect(error.requestId).toBe('big:1');
  });

  it('reports the broken requestId of an oversized body next to its size', () => {
    const big = JSON.stringify({ ...valid, requestId: 'y'.repeat(200), pad: 'x'.repeat(MAX_BODY_BYTES) });
    const error = rejectionOf(big);
    expect(error.issues[1]).toBe(
      'requestId: must be 1-128 characters of A-Z a-z 0-9 . _ : - (got 200 characters)',
    );
    expect(error.requestId).toBe('y'.repeat(200));
  });

  it('reads the requestId of a body that stops being JSON after it', () => {
    const error = rejectionOf('{"requestId": "broken:1", "groupId": oops');
    expect(error.issues[0]).toMatch(/^body is not valid JSON/);
    expect(error.requestId).toBe('broken:1');
  });

  it('keeps a requestId of up to MAX_CORRELATION_ID_CHARS characters, and none longer', () => {
    const longest = 'z'.repeat(MAX_CORRELATION_ID_CHARS);
    const tooLong = 'z'.repeat(MAX_CORRELATION_ID_CHARS + 1);
    expect(rejectionOf(JSON.stringify({ ...valid, requestId: longest })).requestId).toBe(longest);
    const error = rejectionOf(JSON.stringify({ ...valid, requestId: tooLong }));
    expect(error.requestId).toBeUndefined();
    expect(error.issues[0]).toContain(`(got ${MAX_CORRELATION_ID_CHARS + 1} characters)`);
  });

  it('keeps the first of duplicate requestIds for correlation', () => {
    const body = `{"requestId":"first","requestId":"second",${JSON.stringify(valid)
      .slice(1)
      .replace(/"requestId":"[^"]*",/, '')}`;
    const error = rejectionOf(body);
    expect(error.issues).toEqual(['requestId: duplicate key "requestId"']);
    expect(error.requestId).toBe('first');
  });

  it('carries no requestId when it is not a string', () => {
    expect(rejectionOf(JSON.stringify({ ...valid, requestId: 42 })).requestId).toBeUndefined();
  });
});

describe('naturalKey', () => {
  it('is the same for a request without a VPC region and one naming the bucket region', () => {
    const base = { groupId: valid.groupId, cloudProvider: 'AWS', regionName: 'US_EAST_1' } as const;
    expect(naturalKey(base)).toBe(naturalKey({ ...base, vpcRegionName: 'US_EAST_1' }));
  });

  it('differs for a cross-region endpoint', () => {
    const base = { groupId: valid.groupId, cloudProvider: 'AWS', regionName: 'US_EAST_1' } as const;
    expect(naturalKey(base)).not.toBe(naturalKey({ ...base, vpcRegionName: 'US_WEST_2' }));
  });
});
