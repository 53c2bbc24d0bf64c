// Skeleton: replaced by the page itself.
export function PhysnetsPage() {
  return <h1>Physnets</h1>;
}
