/** The API's types as the console uses them, from the generated api-types.ts (npm run gen:api-types). */
import type { components, paths } from '../api-types.js';

export type Schema<K extends keyof components['schemas']> = components['schemas'][K];
type Json<R> = R extends { content: { 'application/json': infer T } } ? T : never;
type Ok<Op> = Op extends { responses: infer R } ? Json<R[200 & keyof R]> : never;

/** The 200 body of `GET path`. */
export type GetJson<P extends keyof paths> = paths[P] extends { get: infer Op } ? Ok<Op> : never;
/** The 200 body of `POST path`. */
export type PostJson<P extends keyof paths> = paths[P] extends { post: infer Op } ? Ok<Op> : never;

export type Allocation = Schema<'Allocation'>;
export type HostRecord = Schema<'HostRecord'>;
export type HostSummary = Schema<'HostSummary'>;
export type PfInfo = Schema<'PfInfo'>;
export type VfInfo = Schema<'VfInfo'>;
export type Network = Schema<'Network'>;
export type IsolationReport = Schema<'IsolationReport'>;
export type Overview = GetJson<'/v1/overview'>;
export type PolicyPlan = PostJson<'/v1/hosts/{name}/policy/plan'>;
export type AllocationState = NonNullable<Allocation['state']>;
