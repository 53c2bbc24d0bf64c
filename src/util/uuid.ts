/**
 * Random (version 4) UUIDs as flat strings. crypto.randomUUID builds its text
 * from some twenty concatenated pieces: on the allocation path, at thousands
 * a second, those pieces were more garbage than any other single call. Here
 * the text is written into a buffer and read out as one string (hex-text.ts).
 */
import { randomFillSync } from 'node:crypto';
import { writeHexOctet } from './hex-text.js';

/** Random bytes drawn 256 UUIDs at a time, as randomUUID's own cache does. */
const random = Buffer.alloc(16 * 256);
let used = random.length;
const text = Buffer.alloc(36);
/** Where each of the 16 bytes' two hex digits go, around the dashes of 8-4-4-4-12. */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
text.fill('-');

export function randomUuid(): string {
  if (used === random.length) {
    randomFillSync(random);
    used = 0;
  }
  for (let i = 0; i < 16; i++) {
    let byte = random[used + i]!;
    // RFC 9562: the version (4) in byte 6's high nibble, the variant (10) in byte 8's top bits.
    if (i === 6) byte = (byte & 0x0f) | 0x40;
    else if (i === 8) byte = (byte & 0x3f) | 0x80;
    writeHexOctet(text, AT[i]!, byte);
  }
  used += 16;
  return text.toString('latin1');
}
