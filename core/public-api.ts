/** What the `d8-fleet` package exports to other programs (`import { RequestsClient } from 'd8-fleet'`). */
export { RequestsClient, RequestsApiError, type RequestsClientOptions } from './requests-client';
export {
  REQUEST_TYPES, REQUEST_STATUSES, PRIORITIES, DECISIONS,
  type ApiCreateRequestInput, type HumanRequest, type RequestType, type RequestStatus, type Priority, type Decision,
} from './requests';
export type { SpendReport, SpendLine } from './approval';
