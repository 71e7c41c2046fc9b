import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '#lib/errors.ts';
import { MAX_BODY_BYTES, naturalKey, parseRequest } from '#lib/request.ts';

const valid = {
  requestId: 'orders-svc:7f3c',
  groupId: '5f1e2d3c4b5a69788796a5b4',
  cloudProvider: 'AWS',
  regionName: 'US_EAST_1',
};

const issuesOf = (body: string): string[] => {
  try {
    parseRequest(body);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    return (error as InvalidRequestError).issues;
  }
  throw new Error('expected the body to be rejected');
};

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
