// Skeleton: replaced by the pages themselves.
import type { PageProps } from '../pages.js';

export function HostsPage() {
  return <h1>Hosts</h1>;
}

export function HostPage({ params }: PageProps) {
  return <h1>Host {params.name}</h1>;
}
