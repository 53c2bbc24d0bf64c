// Skeleton: replaced by the page itself.
export function EventsPage() {
  return <h1>Events</h1>;
}
