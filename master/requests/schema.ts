/** The human request contract lives in core/requests.ts (the dashboard and alerts read it too). */
export * from '../../core/requests';
