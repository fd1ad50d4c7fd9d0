/**
 * What features hand each other, by typed key: a feature `provide`s a service in its `setup`, a later
 * feature (or its routes) `get`s it. The key's owner defines the type; a missing one is a wiring error
 * (a feature listed after the one that needs it in central/features.ts) and fails the start.
 */
export interface ServiceKey<T> {
  readonly name: string;
  /** Type witness only. */
  readonly __type?: T;
}

export function serviceKey<T>(name: string): ServiceKey<T> {
  return { name };
}

export class Services {
  private readonly byKey = new Map<ServiceKey<unknown>, unknown>();

  provide<T>(key: ServiceKey<T>, value: T): void {
    if (this.byKey.has(key)) throw new Error(`service "${key.name}" is provided twice`);
    this.byKey.set(key, value);
  }

  get<T>(key: ServiceKey<T>): T {
    if (!this.byKey.has(key)) throw new Error(`service "${key.name}" is not provided: list the feature that provides it earlier in central/features.ts`);
    return this.byKey.get(key) as T;
  }

  has<T>(key: ServiceKey<T>): boolean {
    return this.byKey.has(key);
  }
}
