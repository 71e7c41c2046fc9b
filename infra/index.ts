/** What an existing CDK app imports: the construct, its props and the settings behind them. */
export {
  AtlasBackupPrivateEndpoints,
  type AtlasBackupPrivateEndpointsProps,
  type OnStatusChangedOptions,
  type StatusEventFilter,
} from './atlas-backup-private-endpoints.ts';
export { type Settings, SettingsError, type SettingsInput } from './settings.ts';
