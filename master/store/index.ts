/** Everything the master keeps in D8_HOME, opened once. */
import { openDb, storePath, type Db } from './db';
import { SlaveStore } from './slaves';
import { MasterInfoStore } from './master-info';
import { DeployHistory } from './deploys';
import { DeployLocks } from './deploy-locks';
import { ControlCommands } from './commands';
import { AlertOutbox } from './outbox';
import { RequestService } from './requests';
import { ApiTokenStore } from './api-tokens';
import { SpendLedger } from './spend';
import { ReleaseStore } from './releases';
import type { Redactor } from '../../core/redact';
import type { Logger } from '../../core/logger';
import { SetAside } from './stored-row';
import { RolloutStore } from './rollouts';
import { AgentPinStore } from './agent-pins';
import { ChannelStore } from './channels';

export interface Store {
  file: string;
  db: Db;
  slaves: SlaveStore;
  master: MasterInfoStore;
  deploys: DeployHistory;
  deployLocks: DeployLocks;
  commands: ControlCommands;
  outbox: AlertOutbox;
  requests: RequestService;
  tokens: ApiTokenStore;
  spend: SpendLedger;
  releases: ReleaseStore;
  rollouts: RolloutStore;
  pins: AgentPinStore;
  channels: ChannelStore;
  close(): void;
}

/**
 * `secrets`: what alerts are scrubbed of (a Redactor that learns rotated tokens, or fixed values).
 * `logger`: where a row this version cannot read is reported (once) as it is set aside.
 */
export function openStore(file: string = storePath(), secrets: string[] | Redactor = [], logger?: Logger): Store {
  const db = openDb(file);
  const outbox = new AlertOutbox(db, secrets);
  const setAside = new SetAside(logger);
  return {
    file, db, outbox,
    slaves: new SlaveStore(db),
    master: new MasterInfoStore(db),
    deploys: new DeployHistory(db),
    deployLocks: new DeployLocks(db),
    commands: new ControlCommands(db, setAside),
    requests: new RequestService(db, outbox, setAside),
    tokens: new ApiTokenStore(db),
    spend: new SpendLedger(db),
    releases: new ReleaseStore(db),
    rollouts: new RolloutStore(db),
    pins: new AgentPinStore(db),
    channels: new ChannelStore(db),
    close: () => db.close(),
  };
}

export { storePath } from './db';
