import type { AgentKindHandlers } from './handler.js';
import { bootDevice } from './boot-device.js';
import { setBootenv, setNetboot } from './boot-override.js';
import { ping } from './ping.js';
import { power } from './power.js';
import { syncState } from './sync-state.js';

/** The handlers of the kinds the agent runs itself (target `agent` in shared/protocol/task-kinds.ts). */
export const AGENT_KIND_HANDLERS: AgentKindHandlers = {
  ping,
  'sync-state': syncState,
  'set-netboot': setNetboot,
  'set-bootenv': setBootenv,
  power,
  'boot-device': bootDevice,
};
