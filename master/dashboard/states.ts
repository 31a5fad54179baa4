/** Whether a slave's agent answered its last check: up for /metrics, "current" for the drift column. */
export const answering = (state: string): boolean => state === 'healthy' || state === 'version_mismatch';
