/**
 * Options that may be given more than once (`--route a --route b`). Commander's
 * variadic `<X...>` would swallow the words after it (and a `]` before the
 * `...`, as in `<DST[@GW]...>`, silently makes it a single value), so each
 * repeatable option collects into an array through this function instead.
 */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
