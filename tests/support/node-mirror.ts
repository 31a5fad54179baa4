/** The loopback Node.js mirror (shared with bench:deploy): see scripts/test-hosts/node-mirror.ts. */
export * from '../../scripts/test-hosts/node-mirror';
