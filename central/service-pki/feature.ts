import type { CentralFeature } from '../api/feature.js';
import { serviceKey } from '../api/services.js';
import { MachineCsrEvent, MACHINE_CSR_EVENT } from '../../shared/api/pki.js';
import { ForbiddenError } from '../../shared/errors/domain-errors.js';
import { KeySeal } from './key-seal.js';
import { CERT_REQUESTS, certRequestsCollection, ISSUED_CERTS, issuedCertsCollection, SERVICE_CAS, serviceCasCollection } from './resources.js';
import { registerServicePkiRoutes } from './routes.js';
import { ServicePki, type Membership } from './service.js';

export const SERVICE_PKI = serviceKey<ServicePki>('service-pki');

export interface ServicePkiFeatureOptions {
  /** Who is a member of a service (central/features.ts hands the service registry over). */
  membership: (services: Parameters<NonNullable<CentralFeature['setup']>>[0]['services']) => Membership;
  /** How often CRLs are checked for re-signing (default hourly). */
  crlCheckMs?: number;
}

/**
 * Per-service CAs ("trust me") and machine certificates: `/api/v1/pki`, the agents' `machine-csr`
 * events, and each site's `pki` desired-state section (CA certificates, CRLs, CSR answers).
 */
export function servicePkiFeature(opts: ServicePkiFeatureOptions): CentralFeature {
  let pki: ServicePki | undefined;
  return {
    name: 'service-pki',
    collections: [serviceCasCollection, issuedCertsCollection, certRequestsCollection],
    setup: ({ deps, services }) => {
      pki = new ServicePki(deps.store, KeySeal.inDir(deps.dataDir), opts.membership(services), { logger: deps.logger });
      services.provide(SERVICE_PKI, pki);
    },
    routes: (app, deps, services) => registerServicePkiRoutes(app, deps, services.get(SERVICE_PKI)),
    stateContributors: [(site) => ({ pki: pki!.siteState(site) })],
    stateCollections: [SERVICE_CAS, CERT_REQUESTS, ISSUED_CERTS],
    eventHandlers: (deps, services) => ({
      [MACHINE_CSR_EVENT]: async (agent, ev) => {
        const parsed = MachineCsrEvent.safeParse(ev.data);
        if (!parsed.success) {
          deps.logger.warn({ agent: agent.id }, 'malformed machine-csr event; ignored');
          return;
        }
        try {
          await services.get(SERVICE_PKI).answerCsr(parsed.data, agent.site);
        } catch (e) {
          if (!(e instanceof ForbiddenError)) throw e;
          deps.logger.warn({ agent: agent.id, machine: parsed.data.machine, err: e.message }, 'machine-csr for a machine of another site; ignored');
        }
      },
    }),
    attach: ({ services, deps }) => {
      const svc = services.get(SERVICE_PKI);
      const timer = setInterval(() => void deps.store.exclusive('service-pki-crl-refresh', async () => (await svc.refreshCrls()) + (await svc.pruneExpired())).catch((e) => deps.logger.error({ err: (e as Error).message }, 'could not re-sign CRLs')), opts.crlCheckMs ?? 3_600_000);
      timer.unref();
      return () => {
        clearInterval(timer);
        svc.close();
      };
    },
  };
}
