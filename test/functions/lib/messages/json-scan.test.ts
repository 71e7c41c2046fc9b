import { describe, expect, it } from 'vitest';
import { findDuplicateKeys, readTopLevelField } from '#messages/json-scan.ts';

describe('findDuplicateKeys', () => {
  it('finds nothing in JSON without repeated keys, including the same key in sibling objects', () => {
    expect(findDuplicateKeys('{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]}')).toEqual([]);
  });

  it('gives the path of each repeated member, in document order', () => {
    expect(findDuplicateKeys('{"a":1,"b":{"c":[0,{"d":1,"d":2}]},"a":3}')).toEqual([
      ['b', 'c', 1, 'd'],
      ['a'],
    ]);
  });

  it('is not fooled by braces, commas, colons and escaped quotes inside strings', () => {
    expect(findDuplicateKeys('{"a":"},{\\"a\\":1,","b":"[\\"a\\"]"}')).toEqual([]);
    expect(findDuplicateKeys('{"a\\"":1,"a\\"":2}')).toEqual([['a"']]);
  });

  it('handles nesting far deeper than a recursive parser could', () => {
    const deep = `${'['.repeat(100_000)}{"x":1,"x":2}${']'.repeat(100_000)}`;
    expect(findDuplicateKeys(deep)).toHaveLength(1);
  });
});

describe('readTopLevelField', () => {
  it('reads a top-level string after nested values that hold the same name', () => {
    expect(
      readTopLevelField('{"a":{"requestId":"inner"},"b":[1,"}"],"requestId":"outer"}', 'requestId'),
    ).toEqual({
      found: 'string',
      value: 'outer',
    });
  });

  it('reads it from a body that is invalid after it, decoding escapes', () => {
    expect(readTopLevelField('{"requestId":"a\\u0041\\n", "x": nope,,,', 'requestId')).toEqual({
      found: 'string',
      value: 'aA\n',
    });
  });

  it('reads past a bad literal, as a correlation read may', () => {
    expect(readTopLevelField('{"x": nope, "requestId":"r"}', 'requestId')).toEqual({
      found: 'string',
      value: 'r',
    });
  });

  it('stops where the structure before the field is broken, and reads only a top-level object', () => {
    expect(readTopLevelField('{"x" "requestId":"r"}', 'requestId')).toEqual({ found: 'none' });
    expect(readTopLevelField('{"x":1 "requestId":"r"}', 'requestId')).toEqual({ found: 'none' });
    expect(readTopLevelField('[{"requestId":"r"}]', 'requestId')).toEqual({ found: 'none' });
    expect(readTopLevelField('{"requestId":"unterminated', 'requestId')).toEqual({ found: 'none' });
  });

  it('skips string values holding commas, braces and escaped quotes', () => {
    expect(readTopLevelField('{"x":"a,}b\\",c","requestId":"r"}', 'requestId')).toEqual({
      found: 'string',
      value: 'r',
    });
  });

  it('reads past JSON whitespace (space, tab, CR, LF) around every token', () => {
    const text = ' \t\r\n{ "x" : 1 ,\r\n "y" : [ 2 ] , "requestId" : "r" }';

    expect(readTopLevelField(text, 'requestId')).toEqual({ found: 'string', value: 'r' });
  });

  it.each([
    ['an empty object', '{}'],
    ['a trailing comma', '{"x":1,}'],
    ['a missing value', '{"x":,"requestId":"r"}'],
    ['a member without a colon', '{"requestId" "r"}'],
    ['a separator other than a comma', '{"x":1;"requestId":"r"}'],
    ['an unterminated name', '{"request'],
    ['a literal cut off at the end', '{"x":12'],
    ['an unterminated string in a nested value', '{"x":["open'],
    ['a nested value never closed', '{"x":[1,{"y":2}'],
    ['a member inside a top-level array', '["requestId":"r"]'],
  ])('finds nothing in %s', (_, text) => {
    expect(readTopLevelField(text, 'requestId')).toEqual({ found: 'none' });
  });

  it('says when the field is there but not a string', () => {
    expect(readTopLevelField('{"requestId": 42}', 'requestId')).toEqual({ found: 'other' });
  });
});
