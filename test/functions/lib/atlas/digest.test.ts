import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DigestAuth,
  type DigestChallenge,
  digestAuthorization,
  digestResponse,
  parseDigestChallenge,
} from '#atlas/digest.ts';
import type { AtlasHttp, HttpAnswer, HttpRequest } from '#atlas/http.ts';

/** RFC 7616 section 3.9.1: the same request answered with MD5 and with SHA-256. */
const rfc7616 = {
  username: 'Mufasa',
  password: 'Circle of Life',
  method: 'GET',
  uri: '/dir/index.html',
  nc: 1,
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
};
const rfc7616Challenge = (algorithm: DigestChallenge['algorithm']): DigestChallenge => ({
  realm: 'http-auth@example.org',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
  algorithm,
  qop: 'auth',
  stale: false,
});

describe('digestResponse', () => {
  it('matches the RFC 2617 section 3.5 example (MD5, qop=auth)', () => {
    const response = digestResponse({
      username: 'Mufasa',
      password: 'Circle Of Life',
      method: 'GET',
      uri: '/dir/index.html',
      nc: 1,
      cnonce: '0a4f113b',
      challenge: {
        realm: 'testrealm@host.com',
        nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
        opaque: '5ccc069c403ebaf9f0171e9517f40e41',
        algorithm: 'MD5',
        qop: 'auth',
        stale: false,
      },
    });

    expect(response).toBe('6629fae49393a05397450978507c4ef1');
  });

  it('matches the RFC 7616 section 3.9.1 example with MD5', () => {
    expect(digestResponse({ ...rfc7616, challenge: rfc7616Challenge('MD5') })).toBe(
      '8ca523f5e9506fed4657c9700eebdbec',
    );
  });

  it('matches the RFC 7616 section 3.9.1 example with SHA-256', () => {
    expect(digestResponse({ ...rfc7616, challenge: rfc7616Challenge('SHA-256') })).toBe(
      '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
    );
  });

  it('matches the RFC 2069 section 2.4 example, for a challenge without qop', () => {
    const response = digestResponse({
      username: 'Mufasa',
      password: 'CircleOfLife',
      method: 'GET',
      uri: '/dir/index.html',
      nc: 1,
      cnonce: 'unused',
      challenge: {
        realm: 'testrealm@host.com',
        nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
        algorithm: 'MD5',
        stale: false,
      },
    });

    expect(response).toBe('1949323746fe6a43ef61f9606e7febea');
  });

  // RFC 7616 section 3.4.2: a -sess algorithm hashes HA1 again with the nonce and the cnonce.
  it.each([
    ['MD5-sess', 'md5'],
    ['SHA-256-sess', 'sha256'],
    ['SHA-512-256', 'sha512-256'],
    ['SHA-512-256-sess', 'sha512-256'],
  ] as const)('computes %s as RFC 7616 section 3.4 defines it', (algorithm, hashName) => {
    const h = (data: string) => createHash(hashName).update(data).digest('hex');
    const challenge = rfc7616Challenge(algorithm);
    const secret = h(`${rfc7616.username}:${challenge.realm}:${rfc7616.password}`);
    const ha1 = algorithm.endsWith('-sess') ? h(`${secret}:${challenge.nonce}:${rfc7616.cnonce}`) : secret;
    const ha2 = h(`${rfc7616.method}:${rfc7616.uri}`);

    expect(digestResponse({ ...rfc7616, challenge })).toBe(
      h(`${ha1}:${challenge.nonce}:00000001:${rfc7616.cnonce}:auth:${ha2}`),
    );
  });

  it('changes with the request counter, so a replayed nc cannot reuse an answer', () => {
    const challenge = rfc7616Challenge('MD5');

    expect(digestResponse({ ...rfc7616, nc: 2, challenge })).not.toBe(
      digestResponse({ ...rfc7616, nc: 1, challenge }),
    );
  });
});

describe('digestAuthorization', () => {
  it('writes the RFC 7616 header: quoted strings, bare qop, 8-hex-digit nc, opaque echoed', () => {
    const header = digestAuthorization({ ...rfc7616, nc: 26, challenge: rfc7616Challenge('MD5') });

    expect(header).toBe(
      'Digest username="Mufasa", realm="http-auth@example.org", ' +
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", uri="/dir/index.html", algorithm=MD5, ' +
        `response="${digestResponse({ ...rfc7616, nc: 26, challenge: rfc7616Challenge('MD5') })}", ` +
        'qop=auth, nc=0000001a, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", ' +
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
    );
  });

  it('leaves out qop, nc, cnonce and opaque for a legacy challenge that has none', () => {
    const challenge: DigestChallenge = { realm: 'r', nonce: 'n', algorithm: 'SHA-256', stale: false };
    const header = digestAuthorization({ ...rfc7616, challenge });

    expect(header).toBe(
      `Digest username="Mufasa", realm="r", nonce="n", uri="/dir/index.html", algorithm=SHA-256, response="${digestResponse({ ...rfc7616, challenge })}"`,
    );
  });

  it('echoes an empty opaque', () => {
    const header = digestAuthorization({ ...rfc7616, challenge: { ...rfc7616Challenge('MD5'), opaque: '' } });

    expect(header.endsWith(', opaque=""')).toBe(true);
  });

  it('escapes quotes and backslashes in the user name', () => {
    const header = digestAuthorization({
      ...rfc7616,
      username: 'a"b\\c',
      challenge: rfc7616Challenge('MD5'),
    });

    expect(header).toContain('username="a\\"b\\\\c"');
  });
});

describe('parseDigestChallenge', () => {
  it('reads the challenge Atlas sends, realm with spaces kept', () => {
    const challenge = parseDigestChallenge(
      'Digest realm="MMS Public API", domain="", nonce="n0nce+/=", algorithm=MD5, qop="auth", stale=false',
    );

    expect(challenge).toEqual({
      realm: 'MMS Public API',
      nonce: 'n0nce+/=',
      algorithm: 'MD5',
      qop: 'auth',
      stale: false,
    });
  });

  it('reads stale=true (any case) and a qop list offering auth', () => {
    const challenge = parseDigestChallenge(
      'Digest realm="r", nonce="abc", qop="auth-int, auth", algorithm=md5-sess, stale=TRUE, opaque="o"',
    );

    expect(challenge).toMatchObject({ algorithm: 'MD5-sess', qop: 'auth', stale: true, opaque: 'o' });
  });

  it('finds Digest among several challenges in one header', () => {
    const challenge = parseDigestChallenge('Bearer realm="x", Digest realm="r, with comma", nonce="abc"');

    expect(challenge).toEqual({ realm: 'r, with comma', nonce: 'abc', algorithm: 'MD5', stale: false });
  });

  it('reads parameter names in any case, escaped quotes, bare values and a -SESS algorithm', () => {
    const challenge = parseDigestChallenge(
      'Digest Realm="a\\"b\\\\c" , NONCE=abc,Algorithm=sha-256-SESS, QOP=" AUTH ,auth-int", opaque=""',
    );

    expect(challenge).toEqual({
      realm: 'a"b\\c',
      nonce: 'abc',
      opaque: '',
      algorithm: 'SHA-256-sess',
      qop: 'auth',
      stale: false,
    });
  });

  it('takes an empty realm, but not an empty nonce', () => {
    expect(parseDigestChallenge('Digest realm="", nonce="n"')).toMatchObject({ realm: '', nonce: 'n' });
    expect(parseDigestChallenge('Digest realm="r", nonce=""')).toBeUndefined();
  });

  it('reads a challenge after a comma without a space, and with several spaces after the scheme', () => {
    expect(parseDigestChallenge('Basic realm="x",Digest   realm="r", nonce="n"')).toMatchObject({
      realm: 'r',
      nonce: 'n',
    });
  });

  it('knows each algorithm Atlas may offer', () => {
    for (const algorithm of [
      'MD5',
      'MD5-sess',
      'SHA-256',
      'SHA-256-sess',
      'SHA-512-256',
      'SHA-512-256-sess',
    ]) {
      expect(parseDigestChallenge(`Digest realm="r", nonce="n", algorithm=${algorithm}`)?.algorithm).toBe(
        algorithm,
      );
    }
  });

  it('stops at a malformed parameter, keeping what it read before', () => {
    expect(parseDigestChallenge('Digest realm="r", nonce="n", =oops, opaque="o"')).toEqual({
      realm: 'r',
      nonce: 'n',
      algorithm: 'MD5',
      stale: false,
    });
  });

  it.each([
    ['no header', null],
    ['a scheme whose name ends in Digest', 'XDigest realm="r", nonce="n"'],
    ['Digest as a parameter value', 'Basic realm=Digest nonce="n"'],
    ['no realm', 'Digest nonce="n"'],
    ['an algorithm with a suffix', 'Digest realm="r", nonce="n", algorithm=MD5-sessx'],
    ['a -sess on an unknown algorithm', 'Digest realm="r", nonce="n", algorithm=SHA-1-sess'],
    ['-sess inside an algorithm name', 'Digest realm="r", nonce="n", algorithm=MD-sess5'],
    ['another scheme', 'Basic realm="r"'],
    ['no nonce', 'Digest realm="r", qop="auth"'],
    ['only auth-int offered', 'Digest realm="r", nonce="n", qop="auth-int"'],
    ['an unknown algorithm', 'Digest realm="r", nonce="n", algorithm=SHA-1'],
  ])('returns undefined for %s', (_, header) => {
    expect(parseDigestChallenge(header)).toBeUndefined();
  });
});

describe('DigestAuth', () => {
  /** An HTTP stand-in answering each request in turn, recording what was sent. */
  const http = (...answers: Array<{ status: number; challenge?: string }>) => {
    const sent: HttpRequest[] = [];
    const fake = {
      send: async (request: HttpRequest): Promise<HttpAnswer> => {
        sent.push(request);
        const next = answers.shift() ?? { status: 200 };
        const headers = new Headers(next.challenge ? { 'www-authenticate': next.challenge } : {});
        return { status: next.status, headers, body: '' };
      },
    };
    return { http: fake as unknown as AtlasHttp, sent };
  };
  const request: HttpRequest = {
    operation: 'list',
    method: 'GET',
    url: 'https://atlas.test/api/x?pageNum=1',
    headers: { accept: 'application/json' },
  };
  const CHALLENGE = 'Digest realm="r", nonce="n", qop="auth"';

  it('returns a 401 without a Digest challenge as it is, and keeps asking without credentials', async () => {
    const { http: fake, sent } = http({ status: 401, challenge: 'Bearer realm="x"' }, { status: 200 });
    const auth = new DigestAuth('user', 'key');

    const first = await auth.send(fake, request);
    const second = await auth.send(fake, request);

    expect([first.status, second.status]).toEqual([401, 200]);
    expect(sent.map((r) => r.headers.authorization)).toEqual([undefined, undefined]);
  });

  it('takes a challenge only from a 401', async () => {
    const { http: fake, sent } = http({ status: 200, challenge: CHALLENGE }, { status: 200 });
    const auth = new DigestAuth('user', 'key');

    await auth.send(fake, request);
    await auth.send(fake, request);

    expect(sent.map((r) => r.headers.authorization)).toEqual([undefined, undefined]);
  });

  it('answers the challenge for the path and query it signs, keeping the request headers', async () => {
    const { http: fake, sent } = http({ status: 401, challenge: CHALLENGE }, { status: 200 });

    const answer = await new DigestAuth('user', 'key').send(fake, request);

    expect(answer.status).toBe(200);
    expect(sent).toHaveLength(2);
    expect(sent[1]?.headers).toMatchObject({ accept: 'application/json' });
    expect(sent[1]?.headers.authorization).toMatch(
      /^Digest username="user", realm="r", nonce="n", uri="\/api\/x\?pageNum=1", /,
    );
  });

  it('returns a second 401 for credentials it already sent: they are wrong', async () => {
    const { http: fake, sent } = http(
      { status: 401, challenge: CHALLENGE },
      { status: 401, challenge: CHALLENGE },
    );

    const answer = await new DigestAuth('user', 'wrong').send(fake, request);

    expect(answer.status).toBe(401);
    expect(sent).toHaveLength(2);
  });

  it('lets the requests waiting on a probe without a challenge go ahead', async () => {
    const { http: fake, sent } = http({ status: 503 }, { status: 200 }, { status: 200 });
    const auth = new DigestAuth('user', 'key');

    const answers = await Promise.all([
      auth.send(fake, request),
      auth.send(fake, request),
      auth.send(fake, request),
    ]);

    expect(answers.map((a) => a.status)).toEqual([503, 200, 200]);
    expect(sent).toHaveLength(3);
  });
});
