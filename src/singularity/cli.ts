#!/usr/bin/env node
// Entry point of dist/tsrt-singularity (Bun single executable), installable as `singularity`.
import { main } from './main.js';

main(process.argv.slice(2)).then(code => {
  process.exitCode = code;
});
