/** Atlas facts shared by the client, the provisioner, the status checker and the simulator. */

export const ATLAS_REGIONS = [
  'US_GOV_WEST_1',
  'US_GOV_EAST_1',
  'US_EAST_1',
  'US_EAST_2',
  'US_WEST_1',
  'US_WEST_2',
  'CA_CENTRAL_1',
  'EU_NORTH_1',
  'EU_WEST_1',
  'EU_WEST_2',
  'EU_WEST_3',
  'EU_CENTRAL_1',
  'AP_EAST_1',
  'AP_NORTHEAST_1',
  'AP_NORTHEAST_2',
  'AP_NORTHEAST_3',
  'AP_SOUTHEAST_1',
  'AP_SOUTHEAST_2',
  'AP_SOUTHEAST_3',
  'AP_SOUTH_1',
  'SA_EAST_1',
  'CN_NORTH_1',
  'CN_NORTHWEST_1',
  'ME_SOUTH_1',
  'AF_SOUTH_1',
  'EU_SOUTH_1',
  'GLOBAL',
] as const;
export type AtlasRegion = (typeof ATLAS_REGIONS)[number];

export const CLOUD_PROVIDERS = ['AWS'] as const;
export type CloudProvider = (typeof CLOUD_PROVIDERS)[number];

/** Documented statuses. Atlas may add more: code must treat any other string as "unknown, in progress". */
export const ATLAS_STATUSES = [
  'INITIATING',
  'PENDING_ACCEPTANCE',
  'ACTIVE',
  'FAILED',
  'PENDING_RECREATION',
  'DELETING',
] as const;
export type KnownAtlasStatus = (typeof ATLAS_STATUSES)[number];
export type AtlasStatus = KnownAtlasStatus | (string & {});

export const DEFAULT_API_VERSION = '2024-11-13';
export const DEFAULT_BASE_URL = 'https://cloud.mongodb.com';

/** Body of a create request, as sent on the wire. */
export interface CreateEndpointBody {
  cloudProvider: CloudProvider;
  regionName: AtlasRegion;
  vpcRegionName?: AtlasRegion;
}

/** An endpoint as Atlas returns it (explicit nulls are normalised away by the client). */
export interface AtlasEndpoint {
  id: string;
  cloudProvider: CloudProvider;
  regionName: string;
  vpcRegionName?: string;
  status: AtlasStatus;
  errorMessage?: string;
  privateEndpointConnectionName?: string;
}

/** Credentials for one profile, as read from its secret. Never logged. */
export type AtlasCredentials =
  | { kind: 'serviceAccount'; clientId: string; clientSecret: string; baseUrl?: string }
  | { kind: 'apiKey'; publicKey: string; privateKey: string; baseUrl?: string };
