import { HttpError, jsonDepthExceeds, parseJson } from '../../agent/http-io';

const b = (s: string) => Buffer.from(s);

describe('jsonDepthExceeds', () => {
  it.each([
    ['[]', 1, false],
    ['[[]]', 1, true],
    ['{"a":{"b":[1]}}', 3, false],
    ['{"a":{"b":[1]}}', 2, true],
    ['"[[[[[[["', 1, false],
    ['{"a":"\\"[[[[[["}', 1, false],
    ['{"a":"\\\\"}', 1, false],
    ['["\\\\",[[]]]', 2, true],
    ['[][][][]', 1, false],
  ])('%s with cap %d -> %s', (text, cap, deeper) => {
    expect(jsonDepthExceeds(b(text), cap)).toBe(deeper);
  });
});

describe('parseJson', () => {
  it('refuses nesting beyond the cap with a 400 naming it, before parsing', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    let err: unknown = null;
    try {
      parseJson(b(deep), 32);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HttpError);
    expect(err).toMatchObject({ status: 400, message: 'request body nests JSON deeper than 32 levels' });
  });
  it('parses nesting up to the cap', () => {
    expect(parseJson(b('{"a":[{"b":1}]}'), 3)).toEqual({ a: [{ b: 1 }] });
  });
});
