// Skeleton: replaced by the page itself.
export function AllocationsPage() {
  return <h1>Allocations</h1>;
}
