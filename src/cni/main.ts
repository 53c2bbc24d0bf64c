#!/usr/bin/env node
/**
 * `vfleet-cni`: the entry a container runtime executes. Reads the network
 * configuration from stdin and the CNI_* variables, runs the command, and
 * prints the result, or a CNI error with a non-zero exit status.
 *
 * `npm run build:cni` bundles this into one CommonJS file, dist/vfleet-cni:
 * CommonJS starts about 10 ms sooner than ESM, and a runtime execs the plugin
 * for every pod. Inside a `"type": "module"` package (this repository's
 * dist/) Node runs an extensionless file as ESM, where `require` is missing;
 * the bundle's banner then takes the builtins from process.getBuiltinModule.
 */
import { fstatSync, readFileSync, writeSync } from 'node:fs';
import { runCommand } from './commands.js';
import { errorVersion } from './config.js';
import { toErrorResult } from './errors.js';

async function readStdin(): Promise<string> {
  // A terminal (someone trying `CNI_COMMAND=VERSION vfleet-cni` by hand) or /dev/null: no configuration.
  if (fstatSync(0).isCharacterDevice()) return '';
  try {
    return readFileSync(0, 'utf8');
  } catch (e) {
    // A non-blocking stdin (inherited from the parent) cannot be read synchronously.
    if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
}

// Straight to fd 1: process.stdout would build a stream (net, tty) just to print one line.
const print = (value: object) => writeSync(1, `${JSON.stringify(value)}\n`);

async function main(): Promise<void> {
  let stdin = '';
  try {
    stdin = await readStdin();
    const output = await runCommand(process.env, stdin);
    if (output) print(output);
  } catch (e) {
    print(toErrorResult(e, errorVersion(stdin)));
    process.exitCode = 1;
  }
}

void main();
