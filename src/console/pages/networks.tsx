// Skeleton: replaced by the page itself.
export function NetworksPage() {
  return <h1>Networks</h1>;
}
