// Skeleton: replaced by the page itself.
export function TrafficPage() {
  return <h1>Traffic</h1>;
}
