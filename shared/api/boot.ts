import { z } from 'zod';
import { SubnetSchema, ReservationSchema } from '../dhcp/config.js';
import { BootEnvSchema } from '../bootenv/schema.js';
import { Name } from './common.js';

const stamps = { createdAt: z.string(), updatedAt: z.string() };

export const SubnetCreate = z.object({ site: Name }).and(SubnetSchema);
export const Subnet = z.object({ id: z.string(), name: z.string(), site: Name, ...stamps }).and(SubnetSchema).meta({ id: 'Subnet' });

export const ReservationCreate = z.object({ site: Name }).and(ReservationSchema);
export const Reservation = z.object({ id: z.string(), name: z.string(), site: Name, ...stamps }).and(ReservationSchema).meta({ id: 'Reservation' });

export const BootEnvDoc = z.object({ id: z.string(), ...stamps }).and(BootEnvSchema).meta({ id: 'BootEnv' });

export const TemplateCreate = z.object({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/), text: z.string().max(256 * 1024), description: z.string().max(1024).optional() }).strict();
export const Template = z.object({ id: z.string(), ...stamps }).and(TemplateCreate).meta({ id: 'Template', description: 'A named snippet templates include with {% render %} / {% include %}' });

export const Lease = z
  .object({
    id: z.string(),
    site: z.string(),
    agent: z.string(),
    mac: z.string(),
    address: z.string(),
    hostname: z.string().optional(),
    subnet: z.string(),
    state: z.enum(['lease', 'release', 'decline', 'expire']),
    expiresAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Lease' });
