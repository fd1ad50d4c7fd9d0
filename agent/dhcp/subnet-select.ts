/**
 * Which subnet a request belongs to: option 82 sub-option 5 (link selection, RFC 3527) or option 118
 * (subnet selection, RFC 3011) when present; else the relay's giaddr; else, for a client that already has an
 * address (renew, release, inform sent straight to us), its ciaddr; else the subnet of the local address
 * the packet arrived on.
 */
import type { Subnet } from '../../shared/dhcp/config.js';
import { inCidr } from '../../shared/dhcp/ip.js';
import type { ClientRequest } from './request.js';

export type SubnetSelector = 'link-selection' | 'subnet-selection' | 'giaddr' | 'ciaddr' | 'local';

export function selectSubnet(req: ClientRequest, subnets: readonly Subnet[], localAddress: string): { subnet?: Subnet; by: SubnetSelector; address: string } {
  const p = req.packet;
  let by: SubnetSelector;
  let address: string;
  if (req.relayAgent?.linkSelection) {
    by = 'link-selection';
    address = req.relayAgent.linkSelection;
  } else if (req.subnetSelection) {
    by = 'subnet-selection';
    address = req.subnetSelection;
  } else if (p.giaddr !== '0.0.0.0') {
    by = 'giaddr';
    address = p.giaddr;
  } else if (p.ciaddr !== '0.0.0.0' && subnets.some((s) => inCidr(p.ciaddr, s.cidr))) {
    by = 'ciaddr';
    address = p.ciaddr;
  } else {
    by = 'local';
    address = localAddress;
  }
  const subnet = subnets.find((s) => inCidr(address, s.cidr));
  return subnet ? { subnet, by, address } : { by, address };
}
