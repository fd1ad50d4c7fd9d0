import { z } from 'zod';

/** A BMC's host: a DNS name or an IPv4/IPv6 literal (no scheme, no path). */
const BmcHost = z.string().min(1).max(253).regex(/^[A-Za-z0-9.:-]+$/, 'a host name or an IP address');

/**
 * A machine's BMC (issue 13). The password is not here: it is the machine's secret param named by
 * `passwordParam` (default `bmc_password`), sealed to the site's agents; only the agent opens it.
 */
export const BmcConfig = z
  .object({
    type: z.enum(['ipmi', 'redfish']),
    address: BmcHost,
    port: z.number().int().min(1).max(65535).optional().describe('default 623 (IPMI) or 443 (Redfish)'),
    username: z.string().min(1).max(64),
    passwordParam: z.string().regex(/^[a-z][a-z0-9_]*$/).max(128).default('bmc_password').describe('the secret param holding the password'),
    systemId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/).optional().describe('Redfish: the ComputerSystem id (default: the only member of /redfish/v1/Systems)'),
    tls: z
      .object({
        ca: z.string().max(16_384).optional().describe('PEM of the CA (or the self-signed certificate) the BMC presents'),
        fingerprint: z.string().regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/).optional().describe('SHA-256 fingerprint of the BMC certificate (pin)'),
        insecure: z.boolean().optional().describe('accept any certificate (only when the operator says so)'),
        http: z.boolean().optional().describe('plain HTTP (test rigs only)'),
      })
      .strict()
      .optional(),
  })
  .strict()
  .meta({ id: 'BmcConfig' });
export type BmcConfig = z.infer<typeof BmcConfig>;

/**
 * A BMC as an operator sets it (create/update): `address` may be left out, and the central then takes
 * the address the discovery image read in-band (the machine's `facts.bmc.address`); an address the
 * operator gave is never replaced by a discovered one.
 */
export const BmcConfigInput = BmcConfig.extend({
  address: BmcHost.optional().describe('default: the address discovery read from the BMC in-band (facts.bmc.address)'),
}).meta({ id: 'BmcConfigInput' });
export type BmcConfigInput = z.infer<typeof BmcConfigInput>;

export const POWER_ACTIONS = ['on', 'off', 'cycle', 'reset', 'status'] as const;
export const PowerAction = z.enum(POWER_ACTIONS);
export type PowerAction = z.infer<typeof PowerAction>;

/** A power reading as the agent last took it. */
export const PowerReading = z
  .object({ state: z.enum(['on', 'off', 'unknown']), readAt: z.string().max(64), error: z.string().max(1024).optional() })
  .strict()
  .meta({ id: 'PowerReading' });
export type PowerReading = z.infer<typeof PowerReading>;

/** The agent event carrying one poll round's readings (or one action's result). */
export const POWER_STATE_EVENT = 'power-state';
export const PowerStateEvent = z
  .object({ readings: z.array(PowerReading.extend({ machineId: z.string().min(1).max(64) })).max(10_000) })
  .strict();
export type PowerStateEvent = z.infer<typeof PowerStateEvent>;

export const PowerRequest = z.object({ action: PowerAction }).strict();
export const BootDeviceRequest = z.object({ device: z.enum(['pxe', 'disk']), persistent: z.boolean().default(false) }).strict();
