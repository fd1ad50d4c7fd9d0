import { describe, expect, it } from 'vitest';
import { serviceKey, Services } from './services.js';

describe('Services (what features hand each other)', () => {
  const HUB = serviceKey<{ connected: number }>('agent-hub');

  it('gives back what was provided under the same key', () => {
    const services = new Services();
    const hub = { connected: 3 };
    services.provide(HUB, hub);
    expect(services.get(HUB)).toBe(hub);
    expect(services.has(HUB)).toBe(true);
  });

  it('a key is its identity, not its name: another key with the same name is a different service', () => {
    const services = new Services();
    services.provide(HUB, { connected: 1 });
    expect(services.has(serviceKey<{ connected: number }>('agent-hub'))).toBe(false);
  });

  it('a missing service is a wiring error naming it and the fix', () => {
    expect(() => new Services().get(HUB)).toThrow('service "agent-hub" is not provided: list the feature that provides it earlier in central/features.ts');
  });

  it('a service is provided once', () => {
    const services = new Services();
    services.provide(HUB, { connected: 1 });
    expect(() => services.provide(HUB, { connected: 2 })).toThrow('service "agent-hub" is provided twice');
  });
});
