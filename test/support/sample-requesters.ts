/**
 * The sample requester registry the stack's tests build: two requesters in other accounts (one
 * by account id, one by role ARN), one front-door requester and one operator.
 */
import type { RequesterInput } from '#infra/settings.ts';

export const SAMPLE_REQUESTERS = [
  {
    name: 'team-a',
    senders: ['111111111111'],
    projects: ['5f0a1b2c3d4e5f6a7b8c9d0e'],
    profiles: ['default'],
    actions: ['create', 'delete'],
    statusEventBusArn: 'arn:aws:events:eu-west-1:111111111111:event-bus/team-a-status',
  },
  {
    name: 'team-b',
    senders: ['arn:aws:iam::222222222222:role/team-b-provisioning'],
    projects: 'ALL',
    profiles: ['team-b'],
    actions: ['create'],
  },
  {
    name: 'orders',
    frontDoorAccounts: ['333333333333', '444444444444'],
    projects: 'ALL',
    profiles: ['default'],
    actions: ['create', 'delete'],
  },
  {
    name: 'ops',
    senders: ['arn:aws:iam::123456789012:role/platform-operator'],
    projects: 'ALL',
    profiles: ['default', 'team-b'],
    actions: ['delete'],
    operator: true,
  },
] satisfies RequesterInput[];
