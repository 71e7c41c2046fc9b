import { describe, expect, it } from 'vitest';
import { baseUrlProblem } from '#atlas/base-url.ts';

const NOT_HTTPS = 'is not https (http is allowed only for localhost, 127.0.0.0/8 and [::1])';

describe('baseUrlProblem', () => {
  it.each([
    'https://cloud.mongodb.com',
    'https://cloud.mongodbgov.com/',
    'http://localhost:4010',
    'http://127.0.0.1:4010',
    'http://127.100.200.250',
    'http://[::1]:4010',
  ])('lets credentials go to %s', (url) => {
    expect(baseUrlProblem(url)).toBeUndefined();
  });

  it.each([
    ['plain http to a public host', 'http://cloud.mongodb.com'],
    ['another scheme, even to a loopback host', 'ftp://localhost'],
    ['http to a name that only starts like a loopback address', 'http://127.0.0.1.example.com'],
    ['http to an address outside 127.0.0.0/8', 'http://128.0.0.1'],
  ])('refuses %s', (_, url) => {
    expect(baseUrlProblem(url)).toBe(NOT_HTTPS);
  });

  it.each([
    ['a user name', 'https://operator@cloud.mongodb.com'],
    ['a password', 'https://:hunter2@cloud.mongodb.com'],
    ['both', 'https://operator:hunter2@cloud.mongodb.com'],
  ])('refuses a URL with %s in it, without quoting it', (_, url) => {
    expect(baseUrlProblem(url)).toBe('has a user name or password in it');
  });

  it('refuses what is not a URL', () => {
    expect(baseUrlProblem('cloud.mongodb.com')).toBe('is not a URL');
  });
});
