import { inCi } from '../support/tier';

describe('inCi: which CI values mean "this is CI"', () => {
  it.each(['true', 'TRUE', '1', 'yes', 'on', 'github'])('CI=%s counts as CI', (v) => {
    expect(inCi({ CI: v })).toBe(true);
  });
  it.each(['', 'false', 'False', '0', ' '])('CI=%j does not', (v) => {
    expect(inCi({ CI: v })).toBe(false);
  });
  it('an unset CI does not', () => {
    expect(inCi({})).toBe(false);
  });
});
