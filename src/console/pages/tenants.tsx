// Skeleton: replaced by the page itself.
export function TenantsPage() {
  return <h1>Tenants</h1>;
}
