// The lab suites' blackout figure from iputils ping output (test/lab/ping-gap.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseReplies, pingStats } from '../lab/ping-gap.js';

const line = (seq: number, at: number, rtt: number) => `[${(1_764_590_000 + at / 1000).toFixed(6)}] 64 bytes from 198.18.7.10: icmp_seq=${seq} ttl=64 time=${rtt} ms`;

describe('ping gap', () => {
  it('reads reply lines with their timestamps, and nothing else', () => {
    const text = ['PING 198.18.7.10 (198.18.7.10) 56(84) bytes of data.', line(1, 0, 0.5), line(2, 10, 1.25), `${line(2, 11, 1.3)} (DUP!)`, '--- 198.18.7.10 ping statistics ---'].join('\n');
    const replies = parseReplies(text);
    assert.deepEqual(replies.map((r) => [r.seq, r.rttMs]), [[1, 0.5], [2, 1.25]]);
    assert.equal(Math.round(replies[1]!.at - replies[0]!.at), 10);
  });

  it('counts lost runs and replies later than the baseline p99 from the event on', () => {
    // 1-50 before the event at 2 ms; 51-53 lost; 54 at 40 ms (late), 55 at 12 ms (late: over 10 ms), 56-60 fine; 61 lost.
    const replies = parseReplies(
      [
        ...Array.from({ length: 50 }, (_, i) => line(i + 1, i * 10, 2)),
        line(54, 560, 40),
        line(55, 560, 12),
        ...Array.from({ length: 5 }, (_, i) => line(56 + i, 570 + i * 10, 2)),
      ].join('\n'),
    );
    const s = pingStats(61, replies, 10, 51);
    assert.deepEqual(s.lostRuns, [[51, 53], [61, 61]]);
    assert.equal(s.lost, 4);
    assert.equal(s.lateMs, 10);
    assert.equal(s.late, 2);
    assert.equal(s.gapMs, 60);
    assert.equal(Math.round(s.longestSilenceMs), 70);
  });

  it('takes a slow baseline as the bar for late', () => {
    const replies = parseReplies([...Array.from({ length: 100 }, (_, i) => line(i + 1, i * 10, 30)), line(101, 1000, 31), line(102, 1010, 45)].join('\n'));
    const s = pingStats(102, replies, 10, 101);
    assert.equal(s.lateMs, 30);
    assert.equal(s.late, 2);
    assert.equal(s.lost, 0);
  });
});
