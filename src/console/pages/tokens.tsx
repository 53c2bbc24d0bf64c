// Skeleton: replaced by the page itself.
export function TokensPage() {
  return <h1>Tokens</h1>;
}
