/**
 * Short hex texts (UUIDs, MACs, PCI addresses) written into a buffer and read
 * out as one flat string. Joined from pieces on the allocation path, each
 * was several strings of garbage, and a long one (a cons string) was copied
 * once more when first read whole: more young-generation pauses, each felt
 * by every request in flight.
 */
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** An octet's two lower-case hex digits at `at` and `at + 1`. */
export function writeHexOctet(text: Buffer, at: number, octet: number): void {
  text[at] = HEX[octet >> 4]!;
  text[at + 1] = HEX[octet & 0x0f]!;
}
